"""Exceptions. C errors become Python exceptions in exactly one place: check()."""
from __future__ import annotations

import errno as _errno


class PyflowError(Exception):
    """Base of every error pyflow reports to a user. exit_code is what the CLI returns."""

    exit_code = 1


class ConfigError(PyflowError):
    """The configuration is invalid. path is the JSON path (e.g. pipes[2].match[1])."""

    exit_code = 2

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class UsageError(PyflowError):
    """A command-line flag or argument is wrong."""

    exit_code = 2


class BackendUnavailable(PyflowError):
    """The backend was not built in, or the host lacks what it needs."""

    exit_code = 3


class NativeError(PyflowError):
    """An error returned by the C core (-errno plus its message)."""

    def __init__(self, code: int, message: str):
        self.errno = -code if code < 0 else code
        self.message = message
        name = _errno.errorcode.get(self.errno, str(self.errno))
        super().__init__(f"{message} [{name}]")


def check(ret: int, err) -> int:
    """Turn a C core return value and its struct pf_error into an exception."""
    if ret >= 0:
        return ret
    from ._native import ffi  # local: keep this module importable without the build

    message = ffi.string(err.msg).decode(errors="replace") or _errno.errorcode.get(-ret, str(ret))
    if ret in (-_errno.ENOTSUP, -_errno.EOPNOTSUPP) and message.startswith("backend "):
        raise BackendUnavailable(message)
    raise NativeError(ret, message)
