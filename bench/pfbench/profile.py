"""Where the time goes: per-program run time with kernel.bpf_stats_enabled=1 (restored after)."""
from __future__ import annotations

import json
import os

from .common import debug, run

STATS_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"


def _progs() -> dict[int, dict]:
    try:
        return {p["id"]: p for p in json.loads(run(["bpftool", "prog", "show", "-j"]))}
    except Exception as exc:
        debug(f"bpftool prog show: {exc}")
        return {}


def profile_run(run_traffic, packets_hint_key: str = "sent") -> dict:
    """Run run_traffic() with BPF run-time stats on; return the programs that ran at least once per ~10 frames."""
    with open(STATS_SYSCTL) as fh:
        old = fh.read().strip()
    try:
        with open(STATS_SYSCTL, "w") as fh:
            fh.write("1")
        before = _progs()
        result = run_traffic()
        after = _progs()
    finally:
        with open(STATS_SYSCTL, "w") as fh:
            fh.write(old)
    frames = max(1, result.get(packets_hint_key, 1))
    progs = []
    for pid, p in after.items():
        b = before.get(pid, {})
        runs = p.get("run_cnt", 0) - b.get("run_cnt", 0)
        if runs * 10 < frames:
            continue   # not on this path (other programs on the machine)
        ns = p.get("run_time_ns", 0) - b.get("run_time_ns", 0)
        progs.append({"id": pid, "name": p.get("name", "?"), "type": p.get("type"), "runs": runs,
                      "ns_per_run": ns / runs if runs else None,
                      "insns_xlated": p.get("bytes_xlated", 0) // 8, "bytes_jited": p.get("bytes_jited")})
    progs.sort(key=lambda p: -(p["ns_per_run"] or 0))
    return {"result": result, "programs": progs, "stats_was": old}
