"""Binding to the C core (cffi, API mode): version check, logging bridge, helpers."""
from __future__ import annotations

import logging
from importlib import resources

from . import __version__
from .errors import PyflowError, check

try:
    from ._native import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the build
    raise PyflowError(f"pyflow's compiled core is missing ({exc}); reinstall with 'make install'") from exc

_built = ffi.string(lib.pf_version()).decode()
if _built != __version__:
    raise PyflowError(
        f"stale build: compiled core is {_built} but the Python package is {__version__}; rebuild with 'make install'"
    )

log = logging.getLogger("pyflow.native")

# DOCA numeric levels (10 disable .. 70 trace) <-> Python logging levels.
DOCA_TO_PY = {10: logging.CRITICAL + 10, 20: logging.CRITICAL, 30: logging.ERROR, 40: logging.WARNING,
              50: logging.INFO, 60: logging.DEBUG, 70: 5}
PY_TO_DOCA = {v: k for k, v in DOCA_TO_PY.items()}


sdk_log = logging.getLogger("pyflow.sdk")


@ffi.def_extern()
def _pf_python_log(level, msg):  # called from C threads; cffi takes the GIL
    try:
        logger = sdk_log if level & lib.PF_LOG_FROM_SDK else log
        level &= ~lib.PF_LOG_FROM_SDK
        logger.log(DOCA_TO_PY.get(level, logging.INFO), ffi.string(msg).decode(errors="replace"))
    except Exception:  # never let a logging problem unwind into C
        pass


def set_log_level(doca_level: int) -> None:
    """Route C log lines at or below doca_level into logging."""
    lib.pf_log_set_handler(lib._pf_python_log, doca_level)


def set_sdk_log_level(doca_level: int) -> None:
    """Let libbpf / DPDK / DOCA messages at or below doca_level through, to the pyflow.sdk logger."""
    lib.pf_log_set_sdk_level(doca_level)
    sdk_log.setLevel(DOCA_TO_PY[doca_level])


set_log_level(lib.PF_LOG_INFO)


def new_error():
    return ffi.new("struct pf_error *")


def call(fn, *args):
    """Call a C API function that takes a trailing struct pf_error * and raise on failure."""
    err = new_error()
    return check(fn(*args, err), err)


def bpf_object_path(name: str) -> str:
    """Path of a compiled BPF object shipped inside the package."""
    return str(resources.files("pyflow") / "bpf" / name)


def bpf_object_dir() -> str:
    return str(resources.files("pyflow") / "bpf")


def backend_available(name: str) -> tuple[bool, str]:
    err = new_error()
    ret = lib.pf_backend_available(name.encode(), err)
    return ret == 0, ffi.string(err.msg).decode() if ret else ""
