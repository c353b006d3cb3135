#!/usr/bin/env python3
"""Software pipes vs dpdk-testpmd io forwarding, one forwarding lcore each, same vdev ports.

  bench_swpipe.py [--vdev net_null] [--seconds 3]

Prints one JSON line: {"pyflow_mpps": .., "testpmd_io_mpps": ..}. Not collected by pytest
(the machine is shared; run it on purpose).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid

HERE = pathlib.Path(__file__).resolve().parent
# one exact pipe on meta.port: the per-frame cost of parse + lookup + count + forward
CONFIG = {
    "name": "bench",
    "ports": [{"name": "a", "id": 0}, {"name": "b", "id": 1}],
    "pipes": [{"name": "root", "type": "basic", "root": True, "match": ["meta.port"], "fwd_miss": "drop",
               "entries": [{"name": "a_to_b", "match": {"meta.port": "a"}, "fwd": "port:b"},
                           {"name": "b_to_a", "match": {"meta.port": "b"}, "fwd": "port:a"}]}],
}


def eal(prefix: str, vdev: str) -> list[str]:
    return ["--no-huge", "-m", "512", "--file-prefix", prefix, "-l", "0-1", "--no-pci",
            "--vdev", f"{vdev}0", "--vdev", f"{vdev}1", "--log-level", "lib.eal:warning"]


def pyflow_mpps(vdev: str, seconds: float) -> float:
    prefix = f"pfd{uuid.uuid4().hex[:5]}"
    job = {"name": prefix, "eal": ["pyflow"] + eal(prefix, vdev), "config": CONFIG, "mode": "bench",
           "duration": seconds, "bindings": {"a": f"{vdev}0", "b": f"{vdev}1"}}
    r = subprocess.run([sys.executable, str(HERE / "runner.py"), json.dumps(job)], capture_output=True, text=True,
                       timeout=seconds + 60)
    if r.returncode:
        raise SystemExit(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])["mpps"]


def testpmd_mpps(vdev: str, seconds: float) -> float:
    prefix = f"pfd{uuid.uuid4().hex[:5]}"
    cmd = ["dpdk-testpmd"] + eal(prefix, vdev) + ["--", "--forward-mode=io", "--auto-start", "--stats-period=1",
                                                 "--total-num-mbufs=8192"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(seconds + 1.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
    # the last full stats block: one Tx-pps per port
    rates = [int(x) for x in re.findall(r"Tx-pps:\s+(\d+)", out)]
    if len(rates) < 2:
        raise SystemExit(f"testpmd printed no rates:\n{out[-2000:]}")
    return sum(rates[-2:]) / 1e6


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vdev", default="net_null")
    ap.add_argument("--seconds", type=float, default=3)
    a = ap.parse_args()
    print(json.dumps({"vdev": a.vdev, "pyflow_mpps": round(pyflow_mpps(a.vdev, a.seconds), 3),
                      "testpmd_io_mpps": round(testpmd_mpps(a.vdev, a.seconds), 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
