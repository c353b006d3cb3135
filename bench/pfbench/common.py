"""Small shared pieces: running commands, summaries, logging."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

VERBOSE = bool(os.environ.get("PFB_VERBOSE"))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def debug(msg: str) -> None:
    if VERBOSE:
        log(msg)


class CommandError(RuntimeError):
    pass


def run(cmd: list[str], *, check: bool = True, ns: str | None = None, timeout: float = 120, input: str | None = None) -> str:
    """Run cmd (inside netns ns if given); return stdout, raise CommandError with stderr on failure."""
    if ns:
        cmd = ns_prefix(ns) + cmd
    debug("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode:
        raise CommandError(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def ns_prefix(ns: str) -> list[str]:
    # nsenter, not "ip netns exec": the latter remounts /sys and so hides bpffs (/sys/fs/bpf) and its pins.
    return ["nsenter", f"--net=/run/netns/{ns}"]


def summary(values: list[float]) -> dict:
    """median/min/max of repeated measurements (the median is what tables and plots show)."""
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0, "values": []}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals), "values": vals}


def percentile(sorted_vals: list[float], q: float) -> float | None:
    if not sorted_vals:
        return None
    idx = min(len(sorted_vals) - 1, max(0, int(round(q / 100.0 * (len(sorted_vals) - 1)))))
    return sorted_vals[idx]


def set_sysctl(path: str, value: str, ns: str | None = None) -> None:
    run(["sysctl", "-q", "-w", f"{path}={value}"], ns=ns)
