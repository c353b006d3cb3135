"""Differential corpus on the doca backend: seeded random pipelines of what the doca backend maps (control, lpm,
basic and weighted hash pipes; eth/ipv4/l4/dscp rewrites, dec_ttl, VLAN pop/push/set, meta.mark set and matched;
forwards to ports, pipes, drop), in switch and vnf mode, and random frames, through
the DOCA Flow simulator, the DPDK software pipes and the eBPF datapath: same fate, bytes, port, entry, counters.

Frames the doca backend is documented to treat differently are not generated (docs/doca.md): truncated or
malformed headers (pyflow's parser drops them; DOCA matches what it parsed) and IPv4 under MPLS labels (pyflow
parses through the label stack; DOCA's outer.ip4 does not). PYFLOW_DIFF_SEED / _CONFIGS / _FRAMES as in
tests/dpdk/test_differential_corpus.py.
"""
from __future__ import annotations

import os
import random

import pytest

from tests.doca.test_doca import doca_mode, run_doca, run_dpdk, run_ebpf, view  # noqa: F401 (a fixture)

scapy = pytest.importorskip("scapy.all")
from scapy.all import ARP, IP, TCP, UDP, Dot1Q, Ether, IPv6, Raw  # noqa: E402

SEED = int(os.environ.get("PYFLOW_DIFF_SEED", "20261203"))
CONFIGS = int(os.environ.get("PYFLOW_DIFF_CONFIGS", "12"))
FRAMES = int(os.environ.get("PYFLOW_DIFF_FRAMES", "250"))

PORTS = ["p0", "p1", "p2"]
V4 = [f"10.{a}.{b}.{c}" for a in (0, 1) for b in (0, 3) for c in (1, 2, 7)]
DPORTS = [53, 80, 443, 4000]
MACS = ["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:aa"]
SETS = ["ipv4.src", "ipv4.dst", "eth.src", "eth.dst", "l4.sport", "l4.dport", "ipv4.dscp", "dec_ttl", "meta.mark"]
MARKS = [1, 2, 3]


def _fwd(rng, later):
    return rng.choice([f"port:{p}" for p in PORTS] + ["drop"] + [f"pipe:{p}" for p in later] * 2)


def _actions(rng, allowed):
    out = {}
    for a in rng.sample(allowed, k=rng.randint(0, min(3, len(allowed)))):
        out[a] = {"ipv4.src": lambda: rng.choice(V4), "ipv4.dst": lambda: rng.choice(V4),
                  "eth.src": lambda: rng.choice(MACS), "eth.dst": lambda: rng.choice(MACS),
                  "l4.sport": lambda: rng.choice(DPORTS + [7777]), "l4.dport": lambda: rng.choice(DPORTS + [7777]),
                  "ipv4.dscp": lambda: rng.randrange(64), "dec_ttl": lambda: True,
                  "meta.mark": lambda: rng.choice(MARKS)}[a]()
    return out


def random_config(rng, n):
    order = rng.sample(["acl", "route", "exact", "spread", "tags"], k=rng.randint(1, 5))
    # a DOCA fwd_miss goes to a pipe or drops (docs/doca.md)
    root = {"name": "root", "type": rng.choice(["basic", "control"]), "root": True,
            "fwd_miss": rng.choice(["drop"] + [f"pipe:{p}" for p in order])}
    if root["type"] == "basic":
        root["match"] = ["meta.port"]
        root["entries"] = [{"name": f"root_{p}", "match": {"meta.port": p}, "fwd": _fwd(rng, order)}
                           for p in rng.sample(PORTS, k=rng.randint(1, 3))]
    else:
        root["match"] = ["eth.type", "meta.port"]
        root["entries"] = [{"name": "root_v4", "match": {"eth.type": "ipv4"}, "fwd": _fwd(rng, order), "priority": 2},
                           {"name": "root_p1", "match": {"meta.port": "p1"}, "fwd": _fwd(rng, order), "priority": 1}]
    pipes = [root]
    for k, name in enumerate(order):
        later = order[k + 1:]
        allowed = rng.sample(SETS, k=rng.randint(1, 4))
        pipe = {"name": name, "actions": allowed, "fwd_miss": rng.choice(["drop"] + [f"pipe:{p}" for p in later])}
        if name == "acl":
            pipe.update(type="control", match=["ipv4.src", "ipv4.dst", "ipv4.proto", "l4.dport"])
            entries = []
            for i in range(rng.randint(2, 6)):
                m = {}
                if rng.random() < 0.6:
                    m["ipv4.src"] = rng.choice([rng.choice(V4), "10.0.0.0/8", "10.1.0.0/16", "10.0.3.0/24"])
                if rng.random() < 0.5:
                    m["ipv4.dst"] = rng.choice(V4)
                if rng.random() < 0.4:
                    m["ipv4.proto"] = rng.choice(["udp", "tcp"])
                if rng.random() < 0.5:
                    m["l4.dport"] = rng.choice(DPORTS)
                entries.append({"name": f"acl{i}", "match": m, "priority": rng.randrange(8)})
        elif name == "route":
            pipe.update(type="lpm", match=["ipv4.dst"])
            prefixes = {rng.choice(["10.0.0.0/8", "10.1.0.0/16", "10.0.3.0/24", f"{rng.choice(V4)}/32",
                                    "10.0.0.0/16"]) for _ in range(rng.randint(1, 5))}
            entries = [{"name": f"route{i}", "match": {"ipv4.dst": p}} for i, p in enumerate(sorted(prefixes))]
        elif name == "spread":
            # weighted hash members: every backend must pick the same member for the same flow
            pipe.update(type="hash", match=["ipv4.src", "ipv4.dst", "ipv4.proto", "l4.sport", "l4.dport"])
            pipe.pop("fwd_miss")
            # every frame reaches a member, IPv6 and ARP too: Ethernet rewrites only, since pyflow drops a frame
            # whose rewritten header it lacks where DOCA leaves it as is (docs/doca.md); the members' IPv4 and L4
            # rewrites are differential-tested in test_doca.py's wcmp config, on IPv4 frames
            allowed = [a for a in allowed if a.startswith("eth.")] or ["eth.dst"]
            pipe["actions"] = allowed
            pipe["fwd"] = rng.choice([f"port:{p}" for p in PORTS])
            entries = [{"name": f"spread{i}", "weight": rng.choice([1, 2, 3, 5, 30, 70])}
                       for i in range(rng.randint(2, 4))]
        elif name == "tags":
            # VLAN pop/set/push on frames whose tag the entry matches (a push onto a tag is 802.1ad), a push
            # onto untagged frames (vlan.id 0), and marks set by earlier pipes; one VLAN action per entry
            pipe.update(type="control", match=["vlan.id", "meta.mark"], actions=["pop_vlan", "push_vlan", "vlan.id",
                                                                                 "eth.dst"])
            entries = []
            for i, vid in enumerate(rng.sample([10, 20, 0], k=rng.randint(1, 3))):
                act = rng.choice(["pop_vlan", "push_vlan", "vlan.id"] if vid else ["push_vlan"])
                entries.append({"name": f"tags{i}", "match": {"vlan.id": vid}, "priority": rng.randrange(4),
                                "vlan": {act: True if act == "pop_vlan" else rng.randrange(1, 4095)}})
            for i, mark in enumerate(rng.sample(MARKS, k=rng.randint(0, 2))):
                entries.append({"name": f"mark{i}", "match": {"meta.mark": mark}, "priority": rng.randrange(4),
                                "vlan": {"eth.dst": rng.choice(MACS)}})
        else:
            pipe.update(type="basic", match=["ipv4.src", "l4.dport"])
            entries = [{"name": f"exact{i}", "match": {"ipv4.src": s, "l4.dport": d}}
                       for i, (s, d) in enumerate({(rng.choice(V4), rng.choice(DPORTS)) for _ in range(5)})]
        # an LPM pipe takes one action template in DOCA: its entries share one action set (or have none)
        shared = _actions(rng, allowed)
        for e in entries:
            if name == "tags":
                e["actions"] = e.pop("vlan")
            else:
                e["actions"] = (shared if rng.random() < 0.6 else {}) if name == "route" else _actions(rng, allowed)
            e["fwd"] = _fwd(rng, later)
        pipe["entries"] = entries
        pipes.append(pipe)
    return {"name": f"dcorpus{n}", "ports": [{"name": p, "id": i} for i, p in enumerate(PORTS)], "pipes": pipes}


def random_frame(rng):
    eth = Ether(src=rng.choice(MACS), dst=rng.choice(MACS))
    l4 = (UDP if rng.random() < 0.7 else TCP)(sport=rng.randrange(1024, 65535), dport=rng.choice(DPORTS))
    # TTL above 1: pyflow drops a frame dec_ttl cannot decrement, DOCA's add wraps (docs/doca.md)
    ip = IP(src=rng.choice(V4), dst=rng.choice(V4), ttl=rng.randint(2, 64), tos=rng.randrange(256))
    kind = rng.random()
    if kind < 0.75:
        pkt = eth / ip / l4 / Raw(bytes(rng.randrange(40)))
    elif kind < 0.85:
        pkt = eth / Dot1Q(vlan=rng.choice([10, 20])) / ip / l4
    elif kind < 0.93:
        pkt = eth / IPv6(src="2001:db8::1", dst=rng.choice(["2001:db8::2", "2001:db8::3"])) / UDP(
            sport=rng.randrange(1024, 65535), dport=rng.choice(DPORTS))
    else:
        pkt = eth / ARP(psrc=rng.choice(V4), pdst=rng.choice(V4))
    return rng.randrange(3), bytes(pkt)


def test_random_pipelines_agree_on_doca_dpdk_and_ebpf(sim, doca_mode):
    if os.geteuid() != 0:
        pytest.skip("the ebpf and dpdk sides need root")
    from pyflow.config.loader import load_config
    from pyflow.plan import doca_graph

    rng = random.Random(SEED)
    problems, total, n = [], 0, 0
    while n < CONFIGS:
        config = random_config(rng, n)
        cfg = load_config(config)
        assert "refused" not in doca_graph(cfg, {}), doca_graph(cfg, {})["refused"]
        frames = [random_frame(rng) for _ in range(FRAMES)]
        doca, dpdk, ebpf = view(run_doca(cfg, frames)), view(run_dpdk(config, frames)), view(run_ebpf(config, frames))
        for i, (a, b, c) in enumerate(zip(doca["frames"], dpdk["frames"], ebpf["frames"])):
            if not a == b == c:
                problems.append(f"config {n} frame {i} {frames[i][1].hex()}: doca {a} dpdk {b} ebpf {c}")
        for key in ("entries", "ports"):
            if not doca[key] == dpdk[key] == ebpf[key]:
                problems.append(f"config {n} {key}: doca {doca[key]} dpdk {dpdk[key]} ebpf {ebpf[key]}")
        total += len(frames)
        n += 1
        if problems:
            problems.insert(0, f"seed {SEED} config {n - 1}: {config}")
            break
    print(f"doca differential corpus: seed {SEED}, {n} configs, {total} frames, {len(problems)} mismatches")
    assert not problems, "\n".join(problems[:30])
