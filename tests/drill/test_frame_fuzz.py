"""Frame fuzzing against a reference model: one million random and mutated frames through the real
XDP datapath (BPF_PROG_RUN) and through the DPDK software pipes, each frame's fate compared with the
model in tests/drill/frames.py.

The pipeline sorts frames by (eth.type, vlan.id), then IPv4 by (proto, dport) with a TTL decrement on
one entry, IPv6 by next header, MPLS by top label (one label leads back into the IPv4 pipe) and UDP
port 1234 by MPEG-TS frame class. Frames are truncated, have header bytes changed, bad IHL / total
length / payload length, extra VLAN/QinQ tags, MPLS stacks with and without bottom-of-stack, IPv6
extension headers, MPEG-TS with bad sync, or are noise. Every frame must get exactly the model's
verdict (tx port, kernel, drop reason); decremented frames must leave with the TTL and the IPv4
checksum the model computes; the counters must add up to the frames sent. PYFLOW_FUZZ_FRAMES and
PYFLOW_FUZZ_SEED change the run.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
import uuid

from tests.bpf.conftest import Datapath, veth_ns  # noqa: F401  (veth_ns is a fixture)
from tests.drill import frames as model
from tests.drill.fuzz_pipeline import XDP_DROP, XDP_PASS, XDP_REDIRECT, describe, fuzz, program, runner

SEED = int(os.environ.get("PYFLOW_FUZZ_SEED", "20261203"))
FRAMES = int(os.environ.get("PYFLOW_FUZZ_FRAMES", "1000000"))
DPDK_FRAMES = int(os.environ.get("PYFLOW_FUZZ_DPDK_FRAMES", str(FRAMES)))
RETVAL = {model.TX: XDP_REDIRECT, model.DROP: XDP_DROP, model.PASS: XDP_PASS}
ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_ebpf_fates_match_the_reference_model(veth_ns, figures):  # noqa: F811
    dp = Datapath(veth_ns["ns"])
    try:
        dp.port(0, veth_ns["a"])
        dp.port(1, veth_ns["c"])
        program(dp)
        t0 = time.perf_counter()
        fates = fuzz(runner(dp), SEED, FRAMES, RETVAL)
        took = time.perf_counter() - t0
        rx = dp.port_counters(0)
        assert rx.rx_packets == FRAMES
        assert dp.port_counters(1).tx_packets == sum(n for (k, _), n in fates.items() if k == model.TX)
        for reason in (model.MALFORMED, model.ACTION, model.ACTION_FAIL):
            assert rx.drops[reason] == fates[(model.DROP, reason)], reason
    finally:
        dp.close()
    figures(f"ebpf: {FRAMES} fuzz frames (seed {SEED}) through BPF_PROG_RUN, every fate equal to the model "
            f"({describe(fates)}); counters agree; {FRAMES / took:,.0f} frames/s with the model")


def test_dpdk_software_pipe_fates_match_the_reference_model(figures):
    from tests.conftest import _probe_dpdk

    why = _probe_dpdk()
    if why:
        import pytest

        pytest.skip(f"dpdk: {why}")
    prefix = f"pfz{uuid.uuid4().hex[:5]}"
    job = {"seed": SEED, "frames": DPDK_FRAMES, "name": prefix,
           "eal": ["pyflow", "--no-huge", "-m", "256", "--file-prefix", prefix, "-l", "0", "--no-pci",
                   "--vdev", "net_null0", "--vdev", "net_null1", "--log-level", "lib.eal:warning"]}
    try:
        r = subprocess.run([sys.executable, "-P", str(ROOT / "tests" / "drill" / "dpdk_fuzz_job.py"), json.dumps(job)],
                           capture_output=True, text=True, timeout=900, cwd=ROOT)
    finally:
        import shutil

        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    fates = {tuple(json.loads(k)): v for k, v in res["fates"].items()}
    assert sum(fates.values()) == DPDK_FRAMES
    figures(f"dpdk software pipes: {DPDK_FRAMES} fuzz frames (seed {SEED}), every fate equal to the model "
            f"({describe(fates)}); counters agree; {DPDK_FRAMES / res['seconds']:,.0f} frames/s with the model")
