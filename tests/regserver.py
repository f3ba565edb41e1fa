"""A real OCI registry for tests: Debian's docker-registry on 127.0.0.1, plus a wire tap.

    reg = RegistryServer(tmp / "reg")                 # plain HTTP, random free port
    reg = RegistryServer(tmp / "reg", tls=Tls.make(tmp / "pki"), users={"u": "pw"})
    reg.start(); reg.host ("127.0.0.1:PORT"); reg.kill(); reg.start()  # same port, storage
    proxy = WireProxy(reg.host)                       # count what crosses the wire
    proxy.host; proxy.log -> [Exchange(method, path, status, sent)]; proxy.before = hook

The storage directory and `http.secret` survive restarts, so upload sessions
and stored blobs outlive a killed registry as they would in production.
"""

from __future__ import annotations

import datetime as dt
import http.client
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Tls:
    """A CA made for the test and a server certificate for 127.0.0.1 signed by it."""

    ca_path: Path
    cert_path: Path
    key_path: Path

    @classmethod
    def make(cls, directory: Path) -> Tls:
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "assembler test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(minutes=5))
              .not_valid_after(now + dt.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                           False, False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                     x509.DNSName("localhost")]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        pem = serialization.Encoding.PEM
        tls = cls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
        tls.ca_path.write_bytes(ca.public_bytes(pem))
        tls.cert_path.write_bytes(cert.public_bytes(pem))
        tls.key_path.write_bytes(key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return tls


def htpasswd_line(user: str, password: str) -> str:
    # docker-registry's htpasswd accepts bcrypt only.
    import bcrypt

    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"


class RegistryServer:
    def __init__(self, directory: Path, *, tls: Tls | None = None,
                 users: dict[str, str] | None = None, token: dict[str, str] | None = None
                 ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.storage = directory / "storage"
        self.port = free_port()
        self.tls = tls
        self.proc: subprocess.Popen | None = None
        self.log_path = directory / "registry.log"
        lines = ["version: 0.1", "log:", "  level: info", "storage:", "  filesystem:",
                 f"    rootdirectory: {self.storage}", "  delete:", "    enabled: true",
                 "http:", f"  addr: 127.0.0.1:{self.port}",
                 "  secret: assembler-test-secret"]
        if tls:
            lines += ["  tls:", f"    certificate: {tls.cert_path}", f"    key: {tls.key_path}"]
        if users:
            pw = directory / "htpasswd"
            pw.write_text("".join(htpasswd_line(u, p) for u, p in users.items()))
            lines += ["auth:", "  htpasswd:", "    realm: assembler-test", f"    path: {pw}"]
        if token:  # {realm, service, issuer, rootcertbundle}: docker's token auth
            lines += ["auth:", "  token:"] + [f"    {k}: {v}" for k, v in token.items()]
        self.config = directory / "config.yml"
        self.config.write_text("\n".join(lines) + "\n")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def start(self, timeout: float = 15) -> RegistryServer:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen([REGISTRY, "serve", str(self.config)], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log_path.read_text()[-2000:]}")
            try:
                requests.get(self.url + "/v2/", timeout=1,
                             verify=str(self.tls.ca_path) if self.tls else True)
                return self
            except requests.RequestException:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not come up")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    sent: int  # request body bytes the client sent through the proxy


class LoopbackHTTP:
    """An HTTP server on 127.0.0.1 (a free port) answering with `handler` in a thread."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@dataclass
class WireProxy:
    """A plain-HTTP reverse proxy in front of a registry that records every exchange.

    `before(method, path)` runs before forwarding; if it returns False the
    connection is dropped without an answer, as a dying server would.
    """

    upstream: str
    log: list[Exchange] = field(default_factory=list)
    before: Callable[[str, str], bool] | None = None

    def __post_init__(self) -> None:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if proxy.before is not None and proxy.before(self.command, self.path) is False:
                    proxy.log.append(Exchange(self.command, self.path, 0, len(body)))
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                try:
                    conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() != "connection"}
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    r = conn.getresponse()
                    data = r.read()
                except OSError:
                    proxy.log.append(Exchange(self.command, self.path, 0, len(body)))
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                proxy.log.append(Exchange(self.command, self.path, r.status, len(body)))
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() in ("connection", "transfer-encoding", "content-length"):
                        continue
                    # Locations are absolute upstream URLs: point them back at us.
                    if k.lower() == "location":
                        v = v.replace(proxy.upstream, proxy.host)
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self._server = LoopbackHTTP(Handler)
        self.host = self._server.host

    def stop(self) -> None:
        self._server.stop()

    def uploads(self) -> list[Exchange]:
        """Requests that carried blob data (POST to start, PATCH chunks, PUT to finish)."""
        return [e for e in self.log if "/blobs/uploads/" in e.path and "mount=" not in e.path]

    def mounts(self) -> list[Exchange]:
        return [e for e in self.log if "mount=" in e.path]


class TokenServer:
    """Docker's token service for one user: signs ES256 JWTs docker-registry accepts.

    `requests` records (scopes, user) per token issued. The signing certificate
    is self-signed and travels in the JWT's x5c header; the registry trusts it
    through `rootcertbundle` (write `cert_path` there).
    """

    def __init__(self, directory: Path, user: str, password: str,
                 service: str = "assembler-test", issuer: str = "assembler-test-issuer") -> None:
        import base64

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        from cryptography.x509.oid import NameOID

        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token signer")])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        self.cert_path = directory / "token-signer.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.service, self.issuer = service, issuer
        self.requests: list[tuple[list[str], str]] = []
        server = self

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        def token(scopes: list[str], subject: str) -> str:
            access = []
            for scope in scopes:
                kind, _, rest = scope.partition(":")
                repo, _, actions = rest.rpartition(":")
                access.append({"type": kind, "name": repo, "actions": actions.split(",")})
            t = int(time.time())
            header = {"typ": "JWT", "alg": "ES256", "x5c": [x5c]}
            claims = {"iss": issuer, "sub": subject, "aud": service, "exp": t + 600,
                      "nbf": t - 10, "iat": t, "jti": f"{t}-{len(server.requests)}",
                      "access": access}
            signing_input = (b64(json.dumps(header).encode()) + "." +
                             b64(json.dumps(claims).encode()))
            r, s = decode_dss_signature(key.sign(signing_input.encode(),
                                                 ec.ECDSA(hashes.SHA256())))
            return signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                from urllib.parse import parse_qs, urlsplit

                query = parse_qs(urlsplit(self.path).query)
                if self.headers.get("Authorization") != expected or \
                        query.get("service") != [service]:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                scopes = query.get("scope", [])
                server.requests.append((scopes, user))
                body = json.dumps({"token": token(scopes, user)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.realm = f"http://127.0.0.1:{self._httpd.server_address[1]}/token"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def registry_config(self) -> dict[str, str]:
        return {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                "rootcertbundle": str(self.cert_path)}

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
