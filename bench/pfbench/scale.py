"""Part 3: pyflow eBPF with 1k / 100k / 1M installed entries: pps, install rate, memory per entry."""
from __future__ import annotations

import json
import os
import time

from .common import log, run, summary
from .measure import throughput
from .pyflow_systems import PyflowEbpf
from .traffic import flow_sources

SCALE_SRC_BASE = "11.0.0.1"     # away from the resubmit example's addresses; 1M sources fit in 11.0.0.0/12
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


def _sample_entries(count: int, src_base: str, tag: str) -> list[dict]:
    """The resubmit example's learned entry for count sources, as control API items: match ipv4.src, set ipv4.dst."""
    items = []
    for src in flow_sources(count, src_base):
        parts = [int(x) for x in src.split(".")]
        dst = ".".join(str((p + 1) & 0xFF) for p in parts)   # src + 1.1.1.1 without carries for these addresses
        items.append({"pipe": "h2n", "entry": {"name": f"pfb{tag}-{src}", "match": {"ipv4.src": src},
                                               "actions": {"ipv4.dst": dst}}})
    return items


def _control_rate(instance: str, items: list[dict], mode: str) -> tuple[float | None, str | None, int]:
    """Entries/s through pyflow's control socket, why it could not be measured, and entries added.

    mode "connect": a new connection per request (what one `pyflow entry add` per entry amounts to);
    "persistent": one connection, one request per entry; "batch": one request carrying every entry.
    """
    try:
        from pyflow.control import ControlClient
    except Exception as exc:
        return None, f"no control API ({exc})", 0
    client = ControlClient(instance, timeout=120)
    done = 0
    t0 = time.perf_counter()
    try:
        if mode == "batch":
            with client:
                result = client.request("entry_add", entries=items)
            done = result.get("added", 0)
            if done != len(items):
                return None, f"batch added {done} of {len(items)}", done
        else:
            if mode == "persistent":
                client.connect()
            try:
                for item in items:
                    client.request("entry_add", **item)
                    done += 1
            finally:
                client.close()
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"[:120], done
    return len(items) / (time.perf_counter() - t0), None, done


# install ways with a target rate: entries/s, and the way it is measured against (same entries, one at a time)
INSTALL_TARGETS = {"capi_batch": (1_000_000, "capi_single"), "control_batch": (200_000, "control_persistent")}
INSTALL_WAYS = ("capi_single", "capi_batch", "control_connect", "control_persistent", "control_batch")


def _install_rates(drv, row: dict, sample: int, repeats: int) -> None:
    """Side by side on the same instance, `repeats` rounds: C API one by one vs batched, control API per
    connection, persistent and batched; `sample` fresh entries each time, from address ranges of their own.
    Then the pipe's entries are read back from the backend and compared with what was reported added."""
    runs: dict[str, list[float]] = {k: [] for k in INSTALL_WAYS}
    before = drv.request(op="count")["entries"]
    added = 0
    for rep in range(repeats):
        for key, base, batch in (("capi_single", f"13.{rep}.0.1", 0), ("capi_batch", f"14.{rep}.0.1", sample)):
            res = drv.request(op="install", count=sample, src_base=base, batch=batch)
            added += res.get("installed", 0)
            if res.get("errors"):
                row["install_skipped_" + key] = f"install: {res.get('first_error')}"[:120]
            else:
                runs[key].append(res["installed"] / res["seconds"])
        for key, base, mode in (("control_connect", f"12.{rep}.0.1", "connect"),
                                ("control_persistent", f"12.{64 + rep}.0.1", "persistent"),
                                ("control_batch", f"12.{128 + rep}.0.1", "batch")):
            rate, skip, done = _control_rate(drv.instance, _sample_entries(sample, base, f"{key[8:11]}{rep}"), mode)
            added += done
            if skip:
                row["install_skipped_" + key] = skip
            else:
                runs[key].append(rate)
    for key, rates in runs.items():
        row["install_runs_" + key] = summary(rates)
        row["install_rate_" + key] = row["install_runs_" + key]["median"]
    after = drv.request(op="count")["entries"]
    row["install_readback"] = {"before": before, "added": added, "after": after}
    log("install/s (median): " + ", ".join(f"{k}: {row.get('install_rate_' + k) or 0:.0f}" for k in INSTALL_WAYS)
        + f"; h2n read back {after} entries, {before} + {added} expected")


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
            # the control API's rows count against h2n's max_entries (beyond the learned flows): room for them
            system.setup(ctx.lab, flows[:1], learn=False, capacity=n + 2 * CONTROL_SAMPLE * ctx.args.repeats,
                         room=8192 + 3 * CONTROL_SAMPLE * ctx.args.repeats)
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
                _install_rates(drv, row, CONTROL_SAMPLE, max(ctx.args.repeats, 1))
        except Exception as exc:
            row["skipped"] = f"{type(exc).__name__}: {exc}"
            log(f"scale {n}: skipped: {row['skipped']}")
        finally:
            system.teardown(ctx.lab)
        row["pps"] = summary([m["pps"] for m in row["runs"]])
    notes = ["install/s: pf_entry_add per entry from Python (cffi), one bpf() update each, while filling the table",
             "B/entry: memlock of the maps sized by max_entries / their capacity (hash maps preallocate)"]
    return {"rows": rows, "notes": notes, "install_sample": CONTROL_SAMPLE,
            "install_targets": {k: {"rate": r, "against": a} for k, (r, a) in INSTALL_TARGETS.items()}}
