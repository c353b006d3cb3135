"""Weighted multipath (seed 004): a hash pipe's members share flows by weight, the same on every backend.

10,000 distinct flows go through a 70/30 and a 1/2/7 hash pipe with BPF_PROG_RUN on the ebpf datapath and
through the DPDK software pipes (tests/dpdk/runner.py). Each member's share of flows is within 0.02 of its
weight, and each flow picks the same member on both backends: one bucket table, one flow hash.
"""
from __future__ import annotations

import uuid

import pytest

from pyflow.lab import eth, ipv4_udp

from tests.dpdk.test_differential_corpus import through_dpdk, through_ebpf

FLOWS = 10_000


def weighted_config(weights: list[int]) -> dict:
    ports = [{"name": "in", "id": 0}] + [{"name": f"m{i}", "id": i + 1} for i in range(len(weights))]
    return {
        "name": "wcmp",
        "ports": ports,
        "pipes": [{
            "name": "wcmp", "type": "hash", "root": True,
            "match": ["ipv4.src", "ipv4.dst", "ipv4.proto", "l4.sport", "l4.dport"],
            "entries": [{"name": f"member{i}", "weight": w, "fwd": f"port:m{i}"} for i, w in enumerate(weights)],
        }],
    }


def flows() -> list[bytes]:
    return [eth("02:00:00:00:00:01", "02:00:00:00:00:aa", 0x0800,
                ipv4_udp(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "172.16.0.1", b"w", sport=1024 + i % 50000,
                         dport=4789))
            for i in range(FLOWS)]


@pytest.mark.parametrize("weights", [[70, 30], [1, 2, 7]], ids=["70-30", "1-2-7"])
def test_weighted_split_is_by_weight_and_the_same_on_ebpf_and_dpdk(weights, tmp_path):
    config = weighted_config(weights)
    frames = flows()
    prefix = f"pfw{uuid.uuid4().hex[:5]}"
    frames = [(0, f) for f in frames]
    chosen = {name: [r["entry"] for r in run(config, frames, prefix, *extra)["results"]]
              for name, run, extra in (("ebpf", through_ebpf, ()), ("dpdk", through_dpdk, (tmp_path,)))}
    total = sum(weights)
    shares = {}
    for backend, members in chosen.items():
        assert None not in members, f"{backend}: a flow matched no member"
        shares[backend] = [members.count(f"member{i}") / FLOWS for i in range(len(weights))]
        print(f"{backend} {'/'.join(map(str, weights))}: " +
              ", ".join(f"member{i} {s:.4f}" for i, s in enumerate(shares[backend])))
        for i, w in enumerate(weights):
            assert abs(shares[backend][i] - w / total) <= 0.02, (backend, i, shares[backend])
    differ = sum(a != b for a, b in zip(chosen["ebpf"], chosen["dpdk"]))
    assert differ == 0, f"{differ} of {FLOWS} flows took a different member on ebpf and dpdk"
