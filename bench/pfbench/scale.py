"""Part 3: pyflow eBPF with 1k / 100k / 1M installed entries: pps, install rate, memory per entry."""
from __future__ import annotations

import json
import os
import time

from .common import log, run, summary
from .measure import throughput
from .pyflow_systems import PyflowEbpf
from .traffic import flow_sources

SCALE_SRC_BASE = "11.0.0.1"     # away from the seed's addresses; 1M sources fit in 11.0.0.0/12
CONTROL_SAMPLE = 1000           # entries added through the control socket per measurement


def _map_memory(instance: str) -> list[dict]:
    root = f"/sys/fs/bpf/pyflow/{instance}"
    maps = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            try:
                info = json.loads(run(["bpftool", "map", "show", "pinned", os.path.join(dirpath, name), "-j"]))
            except Exception:
                continue
            if "bytes_memlock" in info:
                maps.append({"name": info.get("name"), "type": info.get("type"), "max_entries": info.get("max_entries"),
                             "bytes_memlock": info.get("bytes_memlock"), "bytes_key": info.get("bytes_key"),
                             "bytes_value": info.get("bytes_value")})
    return maps


def _control_rate(instance: str, count: int, src_base: str) -> tuple[float | None, str | None]:
    """Entries/s added one request at a time through pyflow's control socket (what `pyflow entry add` uses)."""
    try:
        from pyflow.control import ControlClient
    except Exception as exc:
        return None, f"no control API ({exc})"
    client = ControlClient(instance)
    t0 = time.perf_counter()
    for i, src in enumerate(flow_sources(count, src_base)):
        parts = [int(x) for x in src.split(".")]
        dst = ".".join(str((p + 1) & 0xFF) for p in parts)   # src + 1.1.1.1 without carries for these addresses
        try:
            client.request("entry_add", pipe="h2n", entry={"name": f"pfb-{src}", "match": {"ipv4.src": src},
                                                           "actions": {"ipv4.dst": dst}}, replace=False)
        except Exception as exc:
            return None, f"{type(exc).__name__}: {exc}"[:120]
    return count / (time.perf_counter() - t0), None


def run_scale(ctx) -> dict:
    steps = [int(x) for x in ctx.args.scale.split(",")]
    system = PyflowEbpf(ctx.workdir)
    why = system.unavailable()
    if why:
        log(f"scale: skipped: {why}")
        return {"skipped": why, "rows": []}
    rows = []
    for n in steps:
        row = {"entries": n, "runs": []}
        rows.append(row)
        flows = flow_sources(n, SCALE_SRC_BASE)
        try:
            system.setup(ctx.lab, flows[:1], learn=False, capacity=n + CONTROL_SAMPLE)
            drv = system.driver
            t0 = time.perf_counter()
            res = drv.request(op="install", count=n - 1, src_base=flows[1]) if n > 1 else {"installed": 0, "errors": 0}
            row["install_seconds"] = time.perf_counter() - t0
            row["install_rate_capi"] = (res["installed"] + 1) / res["seconds"] if res.get("seconds") else None
            if res.get("errors"):
                raise RuntimeError(f"install: {res['errors']} errors, first: {res.get('first_error')}")
            maps = _map_memory(drv.instance)
            row["maps"] = maps
            big = [m for m in maps if (m.get("max_entries") or 0) >= n]
            if big:
                cap = min(m["max_entries"] for m in big)
                row["bytes_per_entry"] = sum(m["bytes_memlock"] for m in big) / cap
                row["memlock_total"] = sum(m["bytes_memlock"] for m in maps)
            for rep in range(ctx.args.repeats):
                m = throughput(ctx.lab, system, 64, n, ctx.args.duration, ctx.args.batch, src_base=SCALE_SRC_BASE)
                row["runs"].append(m)
                log(f"scale {n:>8d} entries rep {rep + 1}: {m['pps'] / 1e6:.3f} Mpps, rewritten {m['rewritten_frac'] * 100:.0f}%")
            if n == steps[0]:
                rate, skip = _control_rate(drv.instance, CONTROL_SAMPLE, "12.0.0.1")
                row["install_rate_control"] = rate
                if skip:
                    row["control_skipped"] = skip
        except Exception as exc:
            row["skipped"] = f"{type(exc).__name__}: {exc}"
            log(f"scale {n}: skipped: {row['skipped']}")
        finally:
            system.teardown(ctx.lab)
        row["pps"] = summary([m["pps"] for m in row["runs"]])
    notes = ["install/s (C API): pf_entry_add per entry from Python (cffi), one bpf() update each",
             "install/s (control): one `entry_add` request per entry over the instance's control socket",
             "B/entry: memlock of the maps sized by max_entries / their capacity (hash maps preallocate)"]
    return {"rows": rows, "notes": notes}
