"""Where pyflow keeps state on a host, and how those directories come to exist.

A host on which pyflow never ran has none of them (and /run is a tmpfs that a
reboot empties), so every path is created on first use, root-only.
"""
from __future__ import annotations

import os

from .errors import UsageError

PIN_ROOT = "/sys/fs/bpf/pyflow"          # ebpf: <PIN_ROOT>/<instance>/ holds the pinned maps and programs
RUN_DIR = "/run/pyflow"                  # control sockets: <RUN_DIR>/<instance>.sock
LAB_STATE_DIR = os.path.join(RUN_DIR, "labs")


def ensure_private_dir(path: str, what: str) -> str:
    """mkdir -p path with mode 0700 for what is created; a file in the way is a one-line error."""
    parts = []
    head = os.path.abspath(path)
    while not os.path.exists(head):
        parts.append(head)
        head = os.path.dirname(head)
    if not os.path.isdir(head):
        raise UsageError(f"{what} {path}: {head} is in the way and is not a directory")
    for d in reversed(parts):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            pass
        except OSError as e:
            raise UsageError(f"{what} {path}: cannot create {d}: {e.strerror}") from None
    if not os.path.isdir(path):
        raise UsageError(f"{what} {path}: exists and is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: not writable (pyflow runs as root)")
    # one that was there before (a tmpfs mounted 1777, a hand-made mkdir) is made root-only too; one that
    # another user owns could be tampered with, so it is refused
    st = os.stat(path)
    if st.st_uid != os.geteuid():
        raise UsageError(f"{what} {path}: owned by uid {st.st_uid}, not by uid {os.geteuid()} that pyflow runs as")
    if st.st_mode & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError as e:
            raise UsageError(f"{what} {path}: cannot make it root-only (mode 0700): {e.strerror}") from None
    return path

