#!/usr/bin/env python3
"""Run one DPDK-backend job in its own process (the EAL initialises once per process).

Usage: runner.py JOB_JSON
  job = {
    "eal": [argv...],                   # passed to rte_eal_init unchanged (argv[0] included)
    "name": "pfdXXXX",                  # instance name
    "config": path | {...},             # pipeline config (pyflow JSON)
    "bindings": {"port": "binding"},    # --port NAME=BINDING overrides
    "mode": "open" | "test_run" | "serve" | "bench",
    "frames": [[in_port, "hex"], ...],  # test_run
    "frames_file": path,                # test_run: the frames as a JSON file instead (large sets)
    "batches": [{"pipe": NAME, "ipv4_src": [addr...], "bad_pipe_at": I}],
                                        # test_run: before the frames, each list as one pf_entry_add_batch
                                        # (an EntryBatch; bad_pipe_at: that request names an undefined pipe)
    "duration": seconds,                # serve / bench: run this long (serve also stops on stdin EOF)
  }
Prints one JSON object per line on stdout: {"ready": ...} when serving, then the result.
Errors: one line on stderr, exit status 1.
"""
from __future__ import annotations

import json
import logging
import select
import sys
import time


def counters(inst, program) -> dict:
    from pyflow.native import ffi

    names = program.names()
    ids = sorted(program.entry_ids.values())
    learned = {}
    for pipe in program.pipes:
        for info in inst.entry_list(pipe.id):
            eid = info.entry.id
            if eid not in ids:
                learned[eid] = program.learned_entry_name(pipe.id, ffi.addressof(info, "match")) or f"entry{eid}"
    all_ids = ids + sorted(learned)
    ec = inst.counters_entries(all_ids)
    entries = {names["entries"].get(i) or learned.get(i) or str(i): {"packets": ec[i][0], "bytes": ec[i][1]}
               for i in all_ids}
    return {
        "entries": entries,
        "pipes": {p.name: inst.counters_pipe(p.id) for p in program.pipes},
        "ports": {p.name: inst.counters_port(p.id) for p in program.ports},
        "dpi": inst.counters_dpi(),
        "miss": inst.miss_stats(),
    }


def install_batch(inst, program, spec: dict) -> dict:
    """One EntryBatch of exact ipv4.src entries (the pipe's default fwd); its outcome per request."""
    import ipaddress

    from pyflow.entries import EntryBatch
    from pyflow.errors import NativeError

    batch = EntryBatch(len(spec["ipv4_src"]), program.pipe(spec["pipe"]).id)
    batch.set_column("match.ipv4_src", b"".join(ipaddress.IPv4Address(a).packed for a in spec["ipv4_src"]), 4)
    if "bad_pipe_at" in spec:
        batch.set(spec["bad_pipe_at"], "pipe", (40).to_bytes(4, sys.byteorder))
    error = None
    try:
        batch.install(inst)
    except NativeError as exc:
        error = str(exc)
    listed = sorted(info.entry.id for info in inst.entry_list(program.pipe(spec["pipe"]).id))
    return {"error": error, "results": batch.results(), "ids": batch.ids(), "listed": listed}


def main() -> int:
    job = json.loads(sys.argv[1])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    from pyflow.errors import PyflowError
    from pyflow.instance import Instance, verdict_kind

    try:
        inst = Instance.open("dpdk", job.get("name", "pfd"), eal_args=job["eal"])
    except PyflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        if job["mode"] == "open":
            for port_id, binding in job.get("bind", []):
                inst.port_set(port_id, binding, None)
            print(json.dumps({"ok": True}), flush=True)
            return 0
        from pyflow.compiler import compile_program
        from pyflow.config.loader import load_config

        program = compile_program(load_config(job["config"]), job.get("bindings"))
        program.apply(inst)
        if job["mode"] == "test_run":
            batches = [install_batch(inst, program, b) for b in job.get("batches", [])]
            results = []
            frames = job["frames"] if "frames" in job else json.loads(open(job["frames_file"]).read())
            for in_port, hexframe in frames:
                v, out = inst.test_run(in_port, bytes.fromhex(hexframe))
                results.append({"kind": verdict_kind(v), "out_port": v.out_port, "drop_reason": v.drop_reason,
                                "last_pipe": v.last_pipe, "entry_id": v.entry_id, "hops": v.hops,
                                "entry": program.names()["entries"].get(v.entry_id),
                                "out": out.hex()})
            print(json.dumps({"results": results, "counters": counters(inst, program), "batches": batches}),
                  flush=True)
            return 0
        inst.start()
        print(json.dumps({"ready": True, "info": inst.info()}), flush=True)
        deadline = time.monotonic() + float(job.get("duration", 30))
        if job["mode"] == "bench":
            first = {p.name: inst.counters_port(p.id)["tx_packets"] for p in program.ports}
            t0 = time.monotonic()
            time.sleep(float(job.get("duration", 3)))
            t1 = time.monotonic()
            last = {p.name: inst.counters_port(p.id)["tx_packets"] for p in program.ports}
            mpps = sum(last[k] - first[k] for k in last) / (t1 - t0) / 1e6
            inst.stop()
            print(json.dumps({"mpps": mpps, "counters": counters(inst, program)}), flush=True)
            return 0
        while time.monotonic() < deadline:
            r, _, _ = select.select([sys.stdin], [], [], 0.1)
            if r and not sys.stdin.readline():
                break
        inst.stop()
        print(json.dumps({"counters": counters(inst, program)}), flush=True)
        return 0
    except PyflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        inst.close()


if __name__ == "__main__":
    sys.exit(main())
