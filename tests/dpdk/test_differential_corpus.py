"""Differential suite: the same frames through the XDP datapath (BPF_PROG_RUN on the loaded program) and
through the DPDK software pipes give the same fate, the same output bytes, the same egress port and the
same counters — for every shipped config and for a seeded corpus of random pipelines.

The corpus is reproducible: PYFLOW_DIFF_SEED picks the seed (default fixed), PYFLOW_DIFF_CONFIGS and
PYFLOW_DIFF_FRAMES its size. A mismatch prints the config, the frame (hex) and both outcomes.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.dpdk.test_dpdk import eal_args, last_json, run_job

scapy = pytest.importorskip("scapy.all")
from scapy.all import ARP, IP, TCP, UDP, Dot1Q, Ether, IPv6, Raw  # noqa: E402
from scapy.contrib.mpls import MPLS  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("PYFLOW_DIFF_SEED", "20261203"))
CONFIGS = int(os.environ.get("PYFLOW_DIFF_CONFIGS", "30"))
FRAMES = int(os.environ.get("PYFLOW_DIFF_FRAMES", "350"))

PORTS = ["p0", "p1", "p2"]
V4 = [f"10.{a}.{b}.{c}" for a in (0, 1) for b in (0, 3) for c in (1, 2, 7)]
DPORTS = [53, 80, 443, 4000]
LABELS = [100, 200, 300]
VLANS = [10, 20]
MACS = ["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:aa"]


# ---- random pipelines ---------------------------------------------------------------------------------

def _fwd(rng: random.Random, later: list[str], allow_pipe: bool = True) -> str:
    choices = [f"port:{p}" for p in PORTS] + ["drop", "kernel"]
    if allow_pipe and later:
        choices += [f"pipe:{p}" for p in later] * 2
    return rng.choice(choices)


def _actions(rng: random.Random, allowed: list[str]) -> dict:
    out = {}
    for a in rng.sample(allowed, k=rng.randint(0, min(3, len(allowed)))):
        if a in ("ipv4.src", "ipv4.dst"):
            out[a] = rng.choice(V4)
        elif a in ("eth.src", "eth.dst"):
            out[a] = rng.choice(MACS)
        elif a in ("l4.sport", "l4.dport"):
            out[a] = rng.choice(DPORTS + [7777])
        elif a == "ipv4.dscp":
            out[a] = rng.randrange(64)
        elif a in ("dec_ttl", "pop_vlan", "pop_mpls"):
            out[a] = True
        elif a == "push_vlan":
            out[a] = rng.choice(VLANS)
        elif a == "push_mpls":
            out[a] = {"labels": rng.sample(LABELS, k=rng.randint(1, 2)), "ttl": rng.choice([0, 64])}
    if "pop_mpls" in out and "push_mpls" in out:
        del out["push_mpls"]
    if "pop_vlan" in out and "push_vlan" in out:
        del out["push_vlan"]
    return out


def random_config(rng: random.Random, n: int) -> dict:
    names = ["acl", "route", "ecmp", "labels"]
    rng.shuffle(names)
    order = names[:rng.randint(2, 4)]           # pipes after the root, in forwarding order (no loops)
    pipes = []
    set_fields = ["ipv4.src", "ipv4.dst", "eth.src", "eth.dst", "l4.sport", "l4.dport", "ipv4.dscp", "dec_ttl",
                  "push_vlan", "pop_vlan", "push_mpls", "pop_mpls"]

    root_type = rng.choice(["basic", "control"])
    root = {"name": "root", "type": root_type, "root": True, "fwd_miss": _fwd(rng, order)}
    if root_type == "basic":
        root["match"] = ["meta.port"]
        root["entries"] = [{"name": f"root_{p}", "match": {"meta.port": p}, "fwd": _fwd(rng, order)}
                           for p in rng.sample(PORTS, k=rng.randint(1, 3))]
    else:
        root["match"] = ["eth.type", "meta.port"]
        root["entries"] = [{"name": "root_v4", "match": {"eth.type": "ipv4"}, "fwd": _fwd(rng, order)},
                           {"name": "root_mpls", "match": {"eth.type": "mpls"}, "fwd": _fwd(rng, order)},
                           {"name": "root_vlan_p1", "match": {"eth.type": "vlan", "meta.port": "p1"},
                            "fwd": _fwd(rng, order)}]
    pipes.append(root)
    for pipe_ in pipes:
        if rng.random() < 0.25:
            del pipe_["fwd_miss"]          # the default miss behaviour must agree too

    for k, name in enumerate(order):
        later = order[k + 1:]
        allowed = rng.sample(set_fields, k=rng.randint(1, 5))
        pipe = {"name": name, "actions": allowed, "fwd_miss": _fwd(rng, later)}
        entries = []
        if name == "acl":
            pipe.update(type="control", match=["ipv4.src", "ipv4.dst", "ipv4.proto", "l4.dport"])
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
                                    "10.0.0.0/16", "0.0.0.0/0"]) for _ in range(rng.randint(1, 5))}
            entries = [{"name": f"route{i}", "match": {"ipv4.dst": p}} for i, p in enumerate(sorted(prefixes))]
        elif name == "ecmp":
            pipe.update(type="hash", match=rng.sample(["ipv4.src", "ipv4.dst", "ipv4.proto", "l4.sport",
                                                       "l4.dport"], k=rng.randint(1, 5)))
            entries = [{"name": f"ecmp{i}", "weight": rng.randint(1, 9)} for i in range(rng.randint(1, 3))]
        else:
            pipe.update(type="basic", match=["mpls.label"])
            entries = [{"name": f"label{i}", "match": {"mpls.label": lab}}
                       for i, lab in enumerate(rng.sample(LABELS, k=rng.randint(1, 3)))]
        for e in entries:
            e["actions"] = _actions(rng, allowed)
            e["fwd"] = _fwd(rng, later)
        pipe["entries"] = entries
        if rng.random() < 0.25:
            del pipe["fwd_miss"]
        pipes.append(pipe)
    return {"name": f"corpus{n}", "ports": [{"name": p, "id": i} for i, p in enumerate(PORTS)], "pipes": pipes}


def random_frame(rng: random.Random) -> tuple[int, bytes]:
    eth = Ether(src=rng.choice(MACS), dst=rng.choice(MACS))
    l4 = (UDP if rng.random() < 0.7 else TCP)(sport=rng.randrange(1024, 65535), dport=rng.choice(DPORTS))
    ip = IP(src=rng.choice(V4), dst=rng.choice(V4), ttl=rng.randint(1, 64), tos=rng.randrange(256))
    kind = rng.random()
    if kind < 0.55:
        pkt = eth / ip / l4 / Raw(bytes(rng.randrange(40)))
    elif kind < 0.65:
        pkt = eth / Dot1Q(vlan=rng.choice(VLANS)) / ip / l4
    elif kind < 0.8:
        pkt = eth / MPLS(label=rng.choice(LABELS), s=1, ttl=rng.randint(1, 64)) / ip / l4
    elif kind < 0.85:
        pkt = eth / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(dport=rng.choice(DPORTS))
    elif kind < 0.9:
        pkt = eth / ARP(psrc=rng.choice(V4), pdst=rng.choice(V4))
    else:
        raw = bytes(eth / ip / l4 / Raw(b"x" * 8))
        # truncated headers and a bad IHL: the parser's edges
        if rng.random() < 0.5:
            return rng.randrange(3), raw[:rng.randint(14, 40)]
        return rng.randrange(3), raw[:14] + bytes([0x40 | rng.choice([0, 3, 15])]) + raw[15:]
    return rng.randrange(3), bytes(pkt)


# ---- the two datapaths --------------------------------------------------------------------------------

def through_ebpf(config: dict, frames: list[tuple[int, bytes]], prefix: str) -> dict:
    from pyflow.compiler import compile_program
    from pyflow.config.loader import load_config
    from pyflow.instance import Instance, verdict_kind

    ports = config["ports"]
    links = [f"{prefix}v{i}" for i in range(len(ports) + len(ports) % 2)]
    for a, b in zip(links[::2], links[1::2]):
        subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True)
    try:
        program = compile_program(load_config(config), {p["name"]: links[i] for i, p in enumerate(ports)})
        with Instance("ebpf", prefix, no_pin=True, fresh=True) as inst:
            program.apply(inst)
            names = program.names()["entries"]
            results = []
            for port, frame in frames:
                v, out = inst.test_run(port, frame)
                kind = verdict_kind(v)
                results.append({"kind": kind, "out_port": v.out_port if kind == "tx" else None,
                                "drop_reason": v.drop_reason, "entry": names.get(v.entry_id),
                                "out": out.hex() if kind == "tx" else ""})
            ids = sorted(program.entry_ids.values())
            counts = inst.counters_entries(ids)
            return {"results": results,
                    "entries": {names[i]: list(counts[i]) for i in ids},
                    "pipes": {p.name: inst.counters_pipe(p.id) for p in program.pipes},
                    "ports": {p.name: {k: v for k, v in inst.counters_port(p.id).items()}
                              for p in program.ports},
                    "dpi": inst.counters_dpi()}
    finally:
        for a in links[::2]:
            subprocess.run(["ip", "link", "del", a], capture_output=True)


def through_dpdk(config: dict, frames: list[tuple[int, bytes]], prefix: str, tmp_path) -> dict:
    vdevs = [f"net_null{i}" for i in range(len(config["ports"]))]
    frames_file = tmp_path / f"{prefix}.json"
    frames_file.write_text(json.dumps([[p, f.hex()] for p, f in frames]))
    job = {"name": prefix, "mode": "test_run", "eal": eal_args(prefix, vdevs), "config": config,
           "bindings": {p["name"]: vdevs[i] for i, p in enumerate(config["ports"])}, "frames_file": str(frames_file)}
    res = last_json(run_job(job, timeout=240))
    c = res["counters"]
    return {"results": [{"kind": r["kind"], "out_port": r["out_port"] if r["kind"] == "tx" else None,
                         "drop_reason": r["drop_reason"], "entry": r["entry"],
                         "out": r["out"] if r["kind"] == "tx" else ""} for r in res["results"]],
            "entries": {n: [e["packets"], e["bytes"]] for n, e in c["entries"].items()},
            "pipes": c["pipes"], "ports": c["ports"], "dpi": c["dpi"]}


def compare(label: str, config: dict, frames: list[tuple[int, bytes]], ebpf: dict, dpdk: dict) -> list[str]:
    problems = []
    for i, ((port, frame), a, b) in enumerate(zip(frames, ebpf["results"], dpdk["results"])):
        if a != b:
            problems.append(f"{label} frame {i} (in port {port}) {frame.hex()}:\n  ebpf {a}\n  dpdk {b}")
    for key in ("entries", "pipes", "ports", "dpi"):
        if ebpf[key] != dpdk[key]:
            diff = {k: (ebpf[key].get(k), dpdk[key].get(k)) for k in set(ebpf[key]) | set(dpdk[key])
                    if ebpf[key].get(k) != dpdk[key].get(k)}
            problems.append(f"{label} {key} counters differ (ebpf, dpdk): {diff}")
    if problems:
        problems.insert(0, f"{label} config: {json.dumps(config)}")
    return problems


# Clone sessions are replicated by TC on ebpf (one sk_buff per copy, sent on the wire), which a
# BPF_PROG_RUN of the XDP program cannot show; their copies are compared on real traffic in
# tests/dpdk/test_clone_differential.py (both backends) and tests/netns/test_clone.py instead.
REPLICATED_ON_THE_WIRE = {"psa-clone-e2e.json"}


def shipped_configs() -> list[Path]:
    return sorted(p for p in (ROOT / "conf").glob("*.json")
                  if p.name != "schema.json" and p.name not in REPLICATED_ON_THE_WIRE)


def corpus() -> list[tuple[dict, list[tuple[int, bytes]]]]:
    from pyflow.config.loader import load_config
    from pyflow.errors import ConfigError

    rng = random.Random(SEED)
    out, tries = [], 0
    while len(out) < CONFIGS:
        tries += 1
        assert tries < CONFIGS * 20, "the generator makes too many invalid configs"
        config = random_config(rng, len(out))
        try:
            load_config(config)
        except ConfigError:
            continue
        out.append((config, [random_frame(rng) for _ in range(FRAMES)]))
    return out


def test_random_pipelines_agree_on_ebpf_and_dpdk(tmp_path):
    cases = corpus()
    problems = []
    total = 0
    for n, (config, frames) in enumerate(cases):
        prefix = f"pfc{uuid.uuid4().hex[:5]}"
        ebpf = through_ebpf(config, frames, prefix)
        dpdk = through_dpdk(config, frames, prefix, tmp_path)
        problems += compare(f"seed {SEED} config {n}", config, frames, ebpf, dpdk)
        total += len(frames)
        if len(problems) > 40:
            break
    print(f"differential corpus: seed {SEED}, {len(cases)} configs, {total} frames, "
          f"{len(problems)} mismatches")
    assert not problems, "\n".join(problems[:40])
    assert total >= 10_000 or CONFIGS * FRAMES < 10_000


@pytest.mark.parametrize("path", shipped_configs(), ids=lambda p: p.stem)
def test_shipped_configs_agree_on_ebpf_and_dpdk(path, tmp_path):
    from pyflow.config.loader import load_config

    config = json.loads(path.read_text())
    load_config(config)
    rng = random.Random(SEED)
    ids = [p["id"] for p in config["ports"]]
    frames = [(ids[p % len(ids)], f) for p, f in (random_frame(rng) for _ in range(1000))]
    prefix = f"pfs{uuid.uuid4().hex[:5]}"
    problems = compare(path.name, config, frames, through_ebpf(config, frames, prefix),
                       through_dpdk(config, frames, prefix, tmp_path))
    assert not problems, "\n".join(problems[:40])
