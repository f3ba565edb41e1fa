"""A fault-injecting OCI registry on 127.0.0.1 that speaks just enough of the protocol
to lead a push into one misbehaviour (tests of the client's error paths).

`FakeRegistry(fault)` answers GET /v2/ (with a Basic or Bearer challenge when the
fault needs credentials), HEAD of blobs and manifests (404: nothing is there), POST
of an upload (202 and a Location) and the token endpoint. Faults:

- "basic": every request asks for Basic credentials (so the auth file is read);
- "token-newline", "token-latin1": the token service's token holds a newline, or
  characters outside latin-1;
- "head-loop": every HEAD redirects to itself;
- "location-ftp", "location-ipv6": an upload's Location is `ftp://...` or `http://[::1`.
"""

from __future__ import annotations

import http.server
import json

from regserver import LoopbackHTTP

TOKENS = {"token-newline": "abc\r\nX-Injected: 1", "token-latin1": "t\u00f6k\u20acn"}
LOCATIONS = {"location-ftp": "ftp://127.0.0.1/upload", "location-ipv6": "http://[::1"}


class FakeRegistry:
    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.requests: list[tuple[str, str]] = []
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, status: int, headers: dict[str, str] | None = None,
                        body: bytes = b"") -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _handle(self) -> None:
                registry.requests.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                fault = registry.fault
                if self.path.startswith("/token"):
                    body = json.dumps({"token": TOKENS[fault]}).encode()
                    return self._answer(200, {"Content-Type": "application/json"}, body)
                if fault == "basic":
                    return self._answer(401, {"WWW-Authenticate": 'Basic realm="fake"'})
                if fault in TOKENS and "Authorization" not in self.headers:
                    realm = f"http://{registry.host}/token"
                    return self._answer(401, {"WWW-Authenticate":
                                              f'Bearer realm="{realm}",service="fake"'})
                if self.path == "/v2/":
                    return self._answer(200, {"Docker-Distribution-API-Version":
                                              "registry/2.0"})
                if self.command == "HEAD" and fault == "head-loop":
                    return self._answer(302, {"Location": self.path})
                if self.command == "POST" and "/blobs/uploads/" in self.path:
                    return self._answer(202, {"Location": LOCATIONS.get(fault, "/nowhere")})
                return self._answer(404)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format, *args):
                pass

        self._server = LoopbackHTTP(Handler)
        self.host = self._server.host

    def stop(self) -> None:
        self._server.stop()
