#!/usr/bin/env python3
"""The frame fuzz drill on the DPDK software pipes, in a process of its own (the EAL initialises once per
process): the drill pipeline on two net_null ports, every fuzz frame through pf_test_run, each fate compared
with the model. Prints {"fates": ..., "seconds": ...}; a disagreement is one line on stderr, exit 1."""
from __future__ import annotations

import json
import pathlib
import sys
import time

sys.path.append(str(pathlib.Path(__file__).resolve().parents[2]))


def main() -> int:
    job = json.loads(sys.argv[1])
    from pyflow.instance import Instance
    from pyflow.native import call, ffi, lib
    from tests.drill import frames as model
    from tests.drill.fuzz_pipeline import fuzz, program, runner

    inst = Instance.open("dpdk", job["name"], eal_args=job["eal"])
    try:
        class Dp:  # what program() and runner() use of tests/bpf's Datapath
            pass

        from tests.bpf.conftest import Datapath

        dp = Dp()
        dp.ffi, dp.lib, dp.call, dp.inst = ffi, lib, call, inst.handle
        for name in ("pipe", "fields", "entry", "port_counters"):
            setattr(dp, name, getattr(Datapath, name).__get__(dp))
        inst.port_set(0, "net_null0", None)
        inst.port_set(1, "net_null1", None)
        program(dp)
        t0 = time.perf_counter()
        try:
            fates = fuzz(runner(dp), job["seed"], job["frames"], None)
        except AssertionError as exc:
            print(f"dpdk: {exc}", file=sys.stderr)
            return 1
        took = time.perf_counter() - t0
        rx, tx = dp.port_counters(0), dp.port_counters(1)
        checks = {"rx": (rx.rx_packets, job["frames"]),
                  "tx": (tx.tx_packets, sum(n for (k, _), n in fates.items() if k == model.TX))}
        for reason in (model.MALFORMED, model.ACTION, model.ACTION_FAIL):
            checks[f"drop{reason}"] = (rx.drops[reason], fates[(model.DROP, reason)])
        bad = {k: v for k, v in checks.items() if v[0] != v[1]}
        if bad:
            print(f"dpdk: counters disagree with the frames (counter, expected): {bad}", file=sys.stderr)
            return 1
        print(json.dumps({"fates": {json.dumps(list(k)): n for k, n in fates.items()}, "seconds": took}))
        return 0
    finally:
        inst.close()


if __name__ == "__main__":
    sys.exit(main())
