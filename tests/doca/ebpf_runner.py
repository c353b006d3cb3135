#!/usr/bin/env python3
"""Frames through the ebpf backend's datapath (pf_test_run) inside a namespace the test made.

Usage: ebpf_runner.py JOB_JSON  with job = {"name", "config", "bindings", "frames": [[port, hex]]}
Prints {"results": [...], "counters": {...}}.
"""
from __future__ import annotations

import json
import sys


def main() -> int:
    job = json.loads(sys.argv[1])
    from pyflow.compiler import compile_program
    from pyflow.config.loader import load_config
    from pyflow.instance import Instance, verdict_kind

    program = compile_program(load_config(job["config"]), job["bindings"])
    with Instance("ebpf", job["name"], no_pin=True, fresh=True) as inst:
        program.apply(inst)
        results = []
        for port, hexframe in job["frames"]:
            v, out = inst.test_run(port, bytes.fromhex(hexframe))
            results.append({"kind": verdict_kind(v), "out_port": v.out_port, "out": out.hex(), "drop_reason": v.drop_reason,
                            "entry": program.names()["entries"].get(v.entry_id)})
        ids = program.entry_ids
        ec = inst.counters_entries(list(ids.values())) if ids else {}
        counters = {"entries": {n: ec[i][0] for n, i in ids.items()},
                    "ports": {p.name: inst.counters_port(p.id) for p in program.ports}}
    print(json.dumps({"results": results, "counters": counters}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
