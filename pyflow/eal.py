"""What pyflow checks of the DPDK EAL arguments before the EAL sees them.

A primary EAL keeps its runtime files under /var/run/dpdk/<file-prefix> and holds a lock on the
`config` file there while it lives. A second primary with the same prefix fails inside rte_eal_init
with several lines of EAL output and EINVAL; pyflow says in one line what is wrong instead. Files
left by a primary that was killed (SIGKILL) are not locked: the EAL takes them over, and pyflow says so.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os

from .errors import UsageError

log = logging.getLogger("pyflow")


def _option(args: list[str], name: str) -> str | None:
    value = None
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            value = args[i + 1]
        elif a.startswith(name + "="):
            value = a.split("=", 1)[1]
    return value


def runtime_dir(eal_args: list[str]) -> str | None:
    """The EAL's runtime directory for these arguments, None when it keeps no shared config."""
    if "--in-memory" in eal_args or "--no-shconf" in eal_args:
        return None
    if (_option(eal_args, "--proc-type") or "primary") != "primary":
        return None          # a secondary joins a running primary on purpose
    prefix = _option(eal_args, "--file-prefix") or "rte"
    base = "/var/run" if os.geteuid() == 0 else os.environ.get("XDG_RUNTIME_DIR", "/tmp")
    return os.path.join(base, "dpdk", prefix)


def check_file_prefix(eal_args: list[str]) -> None:
    """UsageError when a live primary holds this --file-prefix; an info line when a dead one left files."""
    d = runtime_dir(eal_args)
    if d is None:
        return
    config = os.path.join(d, "config")
    try:
        fd = os.open(config, os.O_RDWR)
    except OSError:
        return               # nothing there (or nothing we can judge): the EAL decides
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            prefix = os.path.basename(d)
            raise UsageError(f"--file-prefix {prefix}: another DPDK primary process is running with it ({config} "
                             f"is locked); stop it or give this run another --file-prefix") from None
        return
    finally:
        os.close(fd)         # also releases the probe's lock
    log.info("DPDK runtime files of a previous run that is gone are in %s; the EAL takes them over", d)
