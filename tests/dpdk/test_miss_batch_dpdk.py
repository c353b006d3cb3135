"""DPDK miss handling in bursts: with one worker (EAL -l 0-1, no spare lcore) the worker takes its own
misses between rx bursts, installs a burst's flows in one round and resubmits them in their own mbufs
with one tx burst per port. Every first packet still leaves exactly once, counted from the pipe that
missed; the stage profile (PYFLOW_MISS_STAGES) says the burst went through the batch path."""
from __future__ import annotations

import json
import time

from tests.dpdk.test_dpdk import ROOT, Serve, capture, checksums_ok, eal_args, lab, ours, send, udp  # noqa: F401

IP = __import__("scapy.all", fromlist=["IP"]).IP


def test_burst_of_new_flows_resubmitted_in_batches_each_once(lab, tmp_path, monkeypatch):
    prof = tmp_path / "stages.jsonl"
    monkeypatch.setenv("PYFLOW_MISS_STAGES", str(prof))
    p = lab["prefix"]
    job = {"name": p, "eal": eal_args(p, [f"net_af_packet0,iface={lab['d0']}", f"net_af_packet1,iface={lab['d1']}"]),
           "config": str(ROOT / "conf" / "resubmit.json"),
           "bindings": {"uplink": "net_af_packet0", "vf0": "net_af_packet1"}}
    flows = [f"10.{50 + i // 250}.{i % 250}.1" for i in range(200)]
    srv = Serve(job, lab["ns"]["d"])
    try:
        cap = capture(lab["ns"]["a"], lab["a"], 6)
        send(lab["ns"]["b"], lab["b"], [udp(src, "20.1.1.100", i) for i, src in enumerate(flows)])
        time.sleep(0.5)
        out, _ = cap.communicate(timeout=30)
        counters = srv.stop()
    finally:
        srv.kill()
    got = ours([bytes.fromhex(line) for line in out.split()])
    # each first packet exactly once, rewritten by its own entry
    assert sorted(g[IP].src for g in got) == sorted(flows), srv.log
    for g in got:
        a, b, c, d = (int(x) for x in g[IP].src.split("."))
        assert g[IP].dst == f"{a + 1}.{b + 1}.{c + 1}.{d + 1}" and checksums_ok(bytes(g))
    assert all(counters["entries"][f"{src}-flow"]["packets"] == 1 for src in flows)
    assert counters["pipes"]["h2n"]["misses"] == len(flows)
    miss = counters["miss"]
    assert miss["installed"] == len(flows) and miss["resubmitted"] == len(flows), miss
    assert miss["resubmit_errors"] == 0, miss
    assert counters["ports"]["vf0"]["rx_packets"] == len(flows)
    assert counters["ports"]["uplink"]["tx_packets"] == len(flows)
    lines = [json.loads(x) for x in prof.read_text().splitlines() if x.strip()]
    total = {}
    for line in lines:
        if line["backend"] == "dpdk":
            for k, v in line.items():
                if k != "backend":
                    total[k] = total.get(k, 0) + v
    assert total["frames"] == len(flows) and total["installed"] == len(flows), total
    assert total["resubmit_batched"] + total["resubmit_single"] == len(flows), total
    # the burst queued on the miss ring: most of it went back in batches, not frame by frame
    assert total["resubmit_batched"] > len(flows) // 2 and total["wakeups"] < len(flows), total
