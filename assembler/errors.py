"""Errors meant for the user: the CLI prints them as one paragraph, never a traceback."""


class AssemblerError(Exception):
    """A failure the user can act on. `exit_code` 2 means bad input, 1 anything else."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} {self.hint}"


class SpecError(AssemblerError):
    """The user's spec, lock or command line is wrong."""

    exit_code = 2


class ResolveError(AssemblerError):
    """The requested packages cannot be installed together."""

    exit_code = 2


class IntegrityError(AssemblerError):
    """A signature or hash did not verify: the data must not be used."""


class NetworkError(AssemblerError):
    """A download failed after retries."""


class LinkError(AssemblerError):
    """A dynamically linked file in the image needs an interpreter or library the image lacks."""


class MalformedError(IntegrityError):
    """A signed index, a lock or a cache entry holds a value outside its grammar (a hash
    that is not hex, a size that is not a number, a path with '..'). Refused before use;
    bad input like a spec mistake, so exit code 2."""

    exit_code = 2


class DiskError(AssemblerError):
    """The cache or the output cannot be written (disk full, read-only, no permission):
    the machine's fault, not the input's, and never retried. Exit code 1."""


class SandboxError(AssemblerError):
    """A program from the image could not be run in its sandbox (bubblewrap missing or
    refused, the program failed or ran too long): the machine's or the image's fault,
    exit code 1."""
