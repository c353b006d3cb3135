"""DOCA tier: the doca backend against the DOCA Flow simulator (tests/doca/sim), or the SDK where present.

- the pipes and entries the backend creates are exactly the graph `pyflow plan --backend doca` prints;
- frames through the simulated pipes give the same output frames and counters as ebpf and dpdk;
- seed 001 end to end through `pyflow run --backend doca`: miss -> learn -> resubmit, counter lines exact;
- bad input: one line naming the pipe and the DOCA call that refused, nothing left created;
- the simulator's own rules (tests/doca/sim/test_rules.c).
"""
from __future__ import annotations

import copy
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests.doca.sim.build import ROOT, sim_library
from tests.pyflow_testing import PyflowRun, counters_json, wait_until

HERE = pathlib.Path(__file__).resolve().parent
CONF = ROOT / "conf"
SHIPPED = sorted(p for p in CONF.glob("*.json") if p.name != "schema.json")
PY = sys.executable

scapy = pytest.importorskip("scapy.all")
Ether, IP, UDP, TCP, Raw, Dot1Q = scapy.Ether, scapy.IP, scapy.UDP, scapy.TCP, scapy.Raw, scapy.Dot1Q

# Shipped configs the doca backend refuses, and the words of the refusal (docs/doca.md says why).
REFUSED = {
    "ebpf-cast": "match on mpegts.frame",
    "mpls-encap": "pipe source_override: action push_mpls/pop_mpls",
    "psa-clone-e2e": "port 1: per-port egress pipes are not mapped",
    "static-forward": "pipe mpls_pop: match on mpls.label",
}

# Pipelines beyond the shipped ones, so every pipe type, action and forward the backend maps is differential-tested.
DIFF_CONFIG = {
    "name": "diff",
    "ports": [{"name": "a", "id": 0}, {"name": "b", "id": 1}],
    "pipes": [
        {"name": "root", "type": "control", "root": True, "match": ["meta.port", "ipv4.dst"],
         "actions": ["ipv4.dst", "eth.dst", "l4.dport"], "fwd_miss": "drop",
         "entries": [
             {"name": "to_b_rewrite", "priority": 1, "match": {"meta.port": "a", "ipv4.dst": "192.168.2.20"},
              "actions": {"ipv4.dst": "10.9.9.9", "eth.dst": "02:00:00:00:00:bb", "l4.dport": 7777},
              "fwd": "port:b"},
             {"name": "a_other", "priority": 5, "match": {"meta.port": "a"}, "fwd": "pipe:second"},
             {"name": "b_back", "priority": 5, "match": {"meta.port": "b"}, "fwd": "pipe:routes"},
         ]},
        {"name": "second", "type": "basic", "match": ["ipv4.src"], "actions": ["dec_ttl", "ipv4.dscp", "l4.sport"],
         "fwd": "port:b", "fwd_miss": "drop",
         "entries": [{"name": "from_one", "match": {"ipv4.src": "10.0.0.1"},
                      "actions": {"dec_ttl": True, "ipv4.dscp": 46, "l4.sport": 5555}},
                     {"name": "from_three", "match": {"ipv4.src": "10.0.0.3"}, "fwd": "drop"}]},
        {"name": "routes", "type": "lpm", "match": ["ipv4.dst"], "actions": ["eth.src", "ipv4.src"],
         "fwd": "port:a", "fwd_miss": "drop",
         "entries": [{"name": "net10", "match": {"ipv4.dst": "10.0.0.0/8"}},
                     {"name": "net10_5", "match": {"ipv4.dst": "10.0.5.0/24"},
                      "actions": {"eth.src": "02:00:00:00:00:fe", "ipv4.src": "172.16.0.1"}, "fwd": "port:b"}]},
    ],
}


# Weighted multipath: a hash pipe whose members rewrite and forward differently, reached from an LPM pipe.
# The members' bucket ranges are pyflow's (70/30 -> 7 and 3 of 10 buckets, 1 of 3 for the 1/1/1 pipe);
# every backend must pick the same member for the same flow.
WCMP_CONFIG = {
    "name": "wcmp",
    "ports": [{"name": "a", "id": 0}, {"name": "b", "id": 1}],
    "pipes": [
        {"name": "routes", "type": "lpm", "root": True, "match": ["ipv4.dst"], "fwd": "port:a", "fwd_miss": "drop",
         "entries": [{"name": "to_wcmp", "match": {"ipv4.dst": "10.0.0.0/8"}, "fwd": "pipe:wcmp"},
                     {"name": "to_thirds", "match": {"ipv4.dst": "192.168.0.0/16"}, "fwd": "pipe:thirds"}]},
        {"name": "wcmp", "type": "hash", "match": ["ipv4.src", "ipv4.dst", "ipv4.proto", "l4.sport", "l4.dport"],
         "actions": ["eth.dst", "l4.dport"], "fwd": "port:b",
         "entries": [{"name": "path_w70", "weight": 70, "actions": {"eth.dst": "02:00:00:00:00:70"}},
                     {"name": "path_w30", "weight": 30, "actions": {"eth.dst": "02:00:00:00:00:30", "l4.dport": 9030},
                      "fwd": "port:a"}]},
        {"name": "thirds", "type": "hash", "match": ["ipv4.src", "ipv4.dst", "l4.sport"], "actions": ["ipv4.src"],
         "fwd": "port:b",
         "entries": [{"name": "third_1", "weight": 1, "actions": {"ipv4.src": "172.16.0.1"}},
                     {"name": "third_2", "weight": 1, "fwd": "drop"},
                     {"name": "third_3", "weight": 1, "actions": {"ipv4.src": "172.16.0.3"}, "fwd": "port:a"}]},
    ],
}


# VLAN pop/push/set and meta.mark set and matched: a tag is popped, set, pushed onto none (802.1Q) and onto one
# (802.1ad, since the entry matches a tagged frame), and a mark set in one pipe is matched by the next.
VLAN_CONFIG = {
    "name": "vlan",
    "ports": [{"name": "a", "id": 0}, {"name": "b", "id": 1}],
    "pipes": [
        {"name": "root", "type": "control", "root": True, "match": ["vlan.id", "meta.port"],
         "actions": ["pop_vlan", "push_vlan", "vlan.id", "meta.mark"], "fwd_miss": "drop",
         "entries": [
             {"name": "pop10", "priority": 1, "match": {"vlan.id": 10}, "actions": {"pop_vlan": True, "meta.mark": 7},
              "fwd": "pipe:marked"},
             {"name": "qinq20", "priority": 1, "match": {"vlan.id": 20}, "actions": {"push_vlan": 300},
              "fwd": "port:b"},
             {"name": "set30", "priority": 1, "match": {"vlan.id": 30}, "actions": {"vlan.id": 31}, "fwd": "port:a"},
             # untagged only: pushed onto a tag pyflow's outer TPID is 802.1ad, DOCA's the entry's (docs/doca.md)
             {"name": "push_a", "priority": 5, "match": {"meta.port": "a", "vlan.id": 0},
              "actions": {"push_vlan": 100}, "fwd": "port:b"},
             {"name": "b_other", "priority": 5, "match": {"meta.port": "b"}, "actions": {"meta.mark": 9},
              "fwd": "pipe:marked"},
         ]},
        {"name": "marked", "type": "basic", "match": ["meta.mark"], "actions": ["push_vlan", "eth.dst"],
         "fwd_miss": "drop",
         "entries": [{"name": "mark7", "match": {"meta.mark": 7}, "actions": {"push_vlan": 200}, "fwd": "port:a"},
                     {"name": "mark9", "match": {"meta.mark": 9}, "actions": {"eth.dst": "02:00:00:00:00:99"},
                      "fwd": "port:a"}]},
    ],
}


def static_forward_without_mpls() -> dict:
    """conf/static-forward.json less its MPLS entries and pipe: what the doca backend does map of it."""
    cfg = json.loads((CONF / "static-forward.json").read_text())
    cfg["pipes"] = [p for p in cfg["pipes"] if p["name"] != "mpls_pop"]
    for p in cfg["pipes"]:
        p["entries"] = [e for e in p.get("entries", []) if "mpls" not in json.dumps(e)]
        if "actions" in p:
            p["actions"] = [a for a in p["actions"] if "mpls" not in a]
    cfg["name"] = "static-forward-ip"
    return cfg


def doca_accepted() -> dict[str, dict | pathlib.Path]:
    out = {p.stem: p for p in SHIPPED if p.stem not in REFUSED}
    out["diff"] = DIFF_CONFIG
    out["wcmp"] = WCMP_CONFIG
    out["vlan"] = VLAN_CONFIG
    out["static-forward-ip"] = static_forward_without_mpls()
    return out


def load(config):
    from pyflow.config import load_config

    return load_config(str(config) if isinstance(config, pathlib.Path) else copy.deepcopy(config))


MODES = ["switch", "vnf"]


@pytest.fixture(params=MODES)
def doca_mode(request, monkeypatch) -> str:
    """DOCA Flow's mode, as `--doca-mode` sets it: switch (pipes on the switch manager) or vnf (pipes per port)."""
    monkeypatch.setenv("PYFLOW_DOCA_MODE", request.param)
    return request.param


def numeric_bindings(cfg) -> dict[str, str]:
    return {p.name: str(p.id) for p in cfg.ports}


def open_doca(cfg, bindings=None, **opts):
    from pyflow.compiler import compile_program
    from pyflow.instance import Instance

    program = compile_program(cfg, bindings or numeric_bindings(cfg))
    inst = Instance("doca", f"pfdoca{uuid.uuid4().hex[:4]}", no_pin=True, **opts)
    return inst, program


# ---- one source: the graph plan prints is what reaches DOCA Flow -------------------------------------

@pytest.mark.parametrize("name", sorted(doca_accepted()))
def test_created_pipes_equal_the_plan_graph(sim, doca_mode, name):
    from pyflow.plan import doca_graph, plan, render_plan_text

    cfg = load(doca_accepted()[name])
    graph = doca_graph(cfg, {})
    assert "refused" not in graph, graph.get("refused")
    inst, program = open_doca(cfg)
    try:
        program.apply(inst)
        assert sim.dump()["pipes"] == []                 # nothing reaches DOCA before start
        inst.start()
        created = sim.dump()
        # every entry is active: the backend completed them with doca_flow_entries_process
        assert all(e["active"] for p in created["pipes"] for e in p["entries"])
        ctx_names = {eid + 1: n for n, eid in program.entry_ids.items()}
        assert {e["ctx"] for p in created["pipes"] for e in p["entries"]} - {0} == set(ctx_names)
        # the simulator's own account of every pipe and entry it was given == the plan's graph
        assert [{**p, "entries": [{**{k: v for k, v in e.items() if k not in ("active", "ctx")},
                                   "name": ctx_names.get(e["ctx"], p["name"])} for e in p["entries"]]}
                for p in created["pipes"]] == graph["pipes"]
        assert len(graph["pipes"]) >= len(cfg.pipes)
        assert graph["mode"] == f"{doca_mode},hws"
        if doca_mode == "vnf":
            # no switch manager: every port holds a copy of every pipe, and the ports are the sim's own
            assert {p["name"] for p in created["pipes"]} >= {f"{p.name}@{port.id}" for p in cfg.pipes
                                                               for port in cfg.ports}
            assert "switch_port" not in graph
        assert json.loads(inst.describe())["pipes"] == [
            {**p, "entries": [{k: v for k, v in e.items() if k != "active"} for e in p["entries"]]}
            for p in created["pipes"]]
    finally:
        inst.close()
    text = render_plan_text(plan(cfg, "doca"))
    for p in graph["pipes"]:
        assert f"  {p['name']} {p['type']}" in text


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_configs_accepted_or_refused_as_documented(sim, path):
    from pyflow.errors import PyflowError
    from pyflow.plan import doca_graph

    cfg = load(path)
    graph = doca_graph(cfg, {})
    doc = (ROOT / "docs" / "doca.md").read_text()
    if path.stem not in REFUSED:
        assert "refused" not in graph and graph["pipes"]
        return
    assert REFUSED[path.stem] in graph["refused"] and len(graph["refused"].splitlines()) == 1
    assert f"`{path.name}`" in doc                          # the note lists it, with the reason
    inst, program = open_doca(cfg)
    try:
        with pytest.raises(PyflowError) as exc:
            program.apply(inst)
            inst.start()
        assert str(exc.value) == graph["refused"]
        assert sim.dump()["pipes"] == []
    finally:
        inst.close()


# ---- differential: the same frames through doca (simulator), ebpf and dpdk --------------------------

def frames_for(cfg) -> list[tuple[int, bytes]]:
    """Frames on every port: every IPv4 address and port the config's entries name, as source and destination."""
    addrs = {"192.168.99.101", "10.9.9.9", "10.0.0.2"}
    for p in cfg.pipes:
        for e in p.entries:
            for k, v in e.match.items():
                if k in ("ipv4.src", "ipv4.dst"):
                    text = str(v.value) if not hasattr(v, "text") else v.text
                    addrs.add(text.split("/")[0])
    for a in list(addrs):
        if a.endswith(".0"):
            addrs.add(a[:-1] + "7")
    addrs = sorted(a for a in addrs if a.count(".") == 3 and all(x.isdigit() for x in a.split(".")))
    out = []
    seq = 0
    for port in cfg.ports:
        for src in addrs:
            for dst in addrs[:6] + addrs[-3:]:
                seq += 1
                l4 = UDP(sport=1000 + seq, dport=4000) if seq % 3 else TCP(sport=1000 + seq, dport=80, flags="S")
                out.append((port.id, bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                                           IP(src=src, dst=dst, ttl=64, tos=1) / l4 / Raw(b"pfdoca%04d" % seq))))
        out.append((port.id, bytes(Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:01", type=0x88b5) / Raw(bytes(40)))))
        for dst in ("ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01"):        # flooded where the config has groups
            out.append((port.id, bytes(Ether(src="02:00:00:00:00:0a", dst=dst) / IP(src="10.0.0.2", dst="10.0.0.255") /
                                       UDP(sport=68, dport=67) / Raw(b"pfdoca bcast"))))
    # tagged copies for a config that matches VLAN ids: each id it names, one it does not, priority bits kept
    vids = sorted({int(e.match["vlan.id"].value) for p in cfg.pipes for e in p.entries if "vlan.id" in e.match} - {0})
    untagged = out[:40]
    for vid in vids + [77] if vids else []:
        for port, frame in untagged:
            eth = Ether(frame)
            out.append((port, bytes(Ether(src=eth.src, dst=eth.dst) / Dot1Q(vlan=vid, prio=5) / eth.payload)))
    return out


def sh(*args, ns=None, check=True):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def run_ebpf(cfg_json: dict, frames) -> dict:
    """pf_test_run on the ebpf datapath, in a namespace of our own with one veth pair per port."""
    prefix = f"pfe{uuid.uuid4().hex[:5]}"
    ns = prefix + "n"
    sh("ip", "netns", "add", ns)
    try:
        bindings = {}
        for i, p in enumerate(cfg_json["ports"]):
            a, b = f"{prefix}{i}a", f"{prefix}{i}b"
            sh("ip", "link", "add", a, "type", "veth", "peer", "name", b, ns=ns)
            sh("ip", "link", "set", a, "up", ns=ns)
            sh("ip", "link", "set", b, "up", ns=ns)
            bindings[p["name"]] = a
        job = {"name": prefix, "config": cfg_json, "bindings": bindings,
               "frames": [[port, f.hex()] for port, f in frames]}
        r = subprocess.run(["ip", "netns", "exec", ns, PY, str(HERE / "ebpf_runner.py"), json.dumps(job)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def run_dpdk(cfg_json: dict, frames) -> dict:
    """pf_test_run on the dpdk software pipes (tests/dpdk/runner.py, null vdevs: no traffic leaves)."""
    p = f"pfq{uuid.uuid4().hex[:5]}"
    vdevs = [f"net_null{i}" for i in range(len(cfg_json["ports"]))]
    eal = ["pyflow", "--no-huge", "-m", "512", "--file-prefix", p, "-l", "0-1", "--no-pci",
           "--log-level", "lib.eal:warning"] + [a for v in vdevs for a in ("--vdev", v)]
    job = {"name": p, "mode": "test_run", "eal": eal, "config": cfg_json,
           "bindings": {port["name"]: v for port, v in zip(cfg_json["ports"], vdevs)},
           "frames": [[port, f.hex()] for port, f in frames]}
    try:
        r = subprocess.run([PY, str(ROOT / "tests/dpdk/runner.py"), json.dumps(job)], capture_output=True, text=True,
                           timeout=120, input="")
    finally:
        shutil.rmtree(f"/var/run/dpdk/{p}", ignore_errors=True)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    static = set(res["counters"]["entries"]) & {e for pp in cfg_json["pipes"] for e in
                                                (x["name"] for x in pp.get("entries", []))}
    return {"results": res["results"],
            "counters": {"entries": {n: res["counters"]["entries"][n]["packets"] for n in static},
                         "ports": res["counters"]["ports"]}}


def run_doca(cfg, frames) -> dict:
    from pyflow.instance import verdict_kind

    inst, program = open_doca(cfg)
    try:
        program.apply(inst)
        inst.start()
        results = []
        for port, f in frames:
            v, out = inst.test_run(port, f)
            results.append({"kind": verdict_kind(v), "out_port": v.out_port, "out": out.hex(),
                            "entry": program.names()["entries"].get(v.entry_id)})
        ids = program.entry_ids
        ec = inst.counters_entries(list(ids.values())) if ids else {}
        return {"results": results, "counters": {"entries": {n: ec[i][0] for n, i in ids.items()},
                                                 "ports": {p.name: inst.counters_port(p.id) for p in program.ports}}}
    finally:
        inst.close()


def view(run: dict) -> dict:
    """What all backends must agree on: where each frame went, the frame that left, the entry that sent it;
    entry packet counters; port rx/tx. (Drop reasons are not compared: DOCA counts drops by no reason.)"""
    def kind(r):
        # a miss with no handler bound (pf_test_run on ebpf) is the miss the others report
        return "miss" if r["kind"] == "drop" and r.get("drop_reason") == NO_MISS else r["kind"]

    frames = [{"kind": kind(r), **({"out_port": r["out_port"], "out": r["out"], "entry": r["entry"]}
                                   if r["kind"] == "tx" else {})} for r in run["results"]]
    ports = {n: {k: c[k] for k in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes")}
             for n, c in run["counters"]["ports"].items()}
    return {"frames": frames, "entries": run["counters"]["entries"], "ports": ports}


@pytest.mark.parametrize("name", sorted(doca_accepted()))
def test_differential_against_ebpf_and_dpdk(sim, doca_mode, name):
    if os.geteuid() != 0:
        pytest.skip("the ebpf and dpdk sides need root")
    config = doca_accepted()[name]
    cfg_json = json.loads(pathlib.Path(config).read_text()) if isinstance(config, pathlib.Path) else config
    cfg = load(config)
    frames = frames_for(cfg)
    doca = view(run_doca(cfg, frames))
    ebpf = view(run_ebpf(cfg_json, frames))
    dpdk = view(run_dpdk(cfg_json, frames))
    for i, (d, e) in enumerate(zip(doca["frames"], ebpf["frames"])):
        assert d == e, (i, frames[i][0], frames[i][1].hex(), d, e)
    assert doca == ebpf
    assert dpdk == ebpf
    # not a vacuous agreement: frames were forwarded, rewritten and missed
    kinds = {f["kind"] for f in doca["frames"]}
    assert ("replicate" if name == "broadcast" else "tx") in kinds and sum(doca["entries"].values()) > 0
    if name == "wcmp":
        # every member of every hash pipe carried flows, the 70 % member the most
        members = ("path_w70", "path_w30", "third_1", "third_2", "third_3")
        assert all(doca["entries"][m] > 0 for m in members), doca["entries"]
        assert doca["entries"]["path_w70"] > doca["entries"]["path_w30"]
    if name == "broadcast":
        # every flood entry copied its frames to both other ports (a shared mirror plus the forward)
        assert all(v > 0 for v in doca["entries"].values()), doca["entries"]
        assert all(doca["ports"][p]["tx_packets"] > 0 for p in ("p1", "p2", "p3")), doca["ports"]
    if name == "vlan":
        # every VLAN action and both marks carried frames
        assert all(doca["entries"][e] > 0 for e in ("pop10", "qinq20", "set30", "push_a", "mark7", "mark9")), \
            doca["entries"]


def test_hash_member_removed_and_added_back_at_runtime(sim):
    """A member deleted after start takes all its bucket entries with it (its flows miss the pipe, counted as its
    misses); added back, the same flows take it again, and its counter is the sum over its buckets."""
    from pyflow.instance import verdict_kind

    cfg = load(WCMP_CONFIG)
    inst, program = open_doca(cfg)
    frames = [(0, bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.9.9.9", dst="10.0.0.2") /
                        UDP(sport=2000 + i, dport=4000))) for i in range(60)]
    try:
        program.apply(inst)
        inst.start()
        pipe = program.pipe("wcmp").id
        first = [(verdict_kind(v), program.names()["entries"].get(v.entry_id))
                 for v, _ in (inst.test_run(p, f) for p, f in frames)]
        w30 = [i for i, (_, e) in enumerate(first) if e == "path_w30"]
        assert w30 and len(w30) < len(frames)
        buckets_before = len([e for p in sim.dump()["pipes"] if p["name"] == "wcmp" for e in p["entries"]])
        misses0 = inst.counters_pipe(pipe)["misses"]
        inst.entry_del(program.entry_ids["path_w30"])
        assert len([e for p in sim.dump()["pipes"] if p["name"] == "wcmp" for e in p["entries"]]) == buckets_before - 3
        again = [(verdict_kind(v), program.names()["entries"].get(v.entry_id))
                 for v, _ in (inst.test_run(p, f) for p, f in frames)]
        # they reach wcmp through to_wcmp and miss it: no fwd_miss given, so dropped
        assert {again[i] for i in w30} == {("drop", "to_wcmp")}
        assert all(again[i] == first[i] for i in range(len(frames)) if i not in w30)
        assert inst.counters_pipe(pipe)["misses"] - misses0 == len(w30)
        e = program.entry("path_w30")
        new_id = inst.entry_add(e.pipe_id, e.mask_idx, e.prefixlen, e.match, e.entry)
        third = [program.names()["entries"].get(v.entry_id) if v.entry_id != new_id else "path_w30"
                 for v, _ in (inst.test_run(p, f) for p, f in frames)]
        assert [third[i] for i in w30] == ["path_w30"] * len(w30)
        assert inst.counters_entries([new_id])[new_id][0] == len(w30)
    finally:
        inst.close()


# ---- seed 001 end to end: miss -> RSS -> learn -> install -> resubmit --------------------------------

RESUBMIT_FLOWS = [f"192.168.99.{101 + i}" for i in range(10)]
NO_MISS = 2     # PF_DROP_NO_MISS


def resubmit_first_packets(backend: str, doca_mode: str = "switch") -> dict:
    """`pyflow run` on conf/resubmit.json in a lab of its own; the first frame of each of 10 flows from the user
    namespace misses h2n, is learned and resubmitted. Counters (control socket), log lines, frames received."""
    from pyflow import lab as labmod

    prefix = f"pfd{uuid.uuid4().hex[:4]}"
    lab = labmod.Lab("resubmit", prefix=prefix).up()
    run = None
    try:
        user, net = lab.host("user"), lab.host("net")
        from tests.netns.test_metrics import free_port, scrape

        port = free_port()
        args = ["--backend", backend, "-j", str(CONF / "resubmit.json"), "--instance", prefix, "--fresh",
                "--stats-interval", "0.2", "--metrics", f"127.0.0.1:{port}"]
        if backend == "doca":
            args += ["--doca-sim", sim_library(), "--doca-mode", doca_mode, "--port", f"uplink=0,iface={net.root_ifname}",
                     "--port", f"vf0=1,iface={user.root_ifname}"]
        else:
            os.makedirs("/sys/fs/bpf/pyflow", exist_ok=True)    # the ebpf backend pins under it
            args += lab.port_args()
        run = PyflowRun(args)
        run.ready(60)
        frames = [labmod.eth(net.mac, user.mac, 0x0800,
                             labmod.ipv4_udp(src, "20.1.1.100", labmod.payload_tag("first", i), dport=4000))
                  for i, src in enumerate(RESUBMIT_FLOWS)]
        with labmod.Capture(lab, "net") as cap:
            lab.send_frames("user", frames)
            wait_until(lambda: len([f for f in cap.frames if b"pfl first" in f]) >= len(frames), 20)
            # the counters once the handler has resubmitted every first frame and the uplink sent it
            counters = wait_until(lambda: counters_json(prefix), 10, until=lambda c: min(
                c["miss_handler"]["resubmitted"], c["ports"]["uplink"]["tx_packets"]) >= len(frames),
                what="every first frame resubmitted and sent")
        metrics = scrape(port)
        offloaded = {(k[0], dict(k[1]).get("pipe"), dict(k[1]).get("entry")): v for k, v in metrics.items()
                     if k[0] in ("pyflow_pipe_offloaded", "pyflow_entry_offloaded")}
        printed = len(run.stdout)
        wait_until(lambda: [line for line in run.stdout[printed:] if line.startswith("Static Entry Counters:")], 10,
                   what="a counter line printed after the last frame")
        assert run.stop(signal.SIGINT, 30.0) == 0, "\n".join(run.stderr[-20:])
        created = [line.split("Created flow for IP ")[1].strip() for line in run.stderr if "Created flow for IP" in line]
        lines = [line for line in run.stdout if line.startswith("Static Entry Counters:")]
        return {"counters": counters, "created": created, "last_line": lines[-1] if lines else "",
                "frames": sorted(f[12:] for f in cap.frames if b"pfl first" in f), "stdout": run.stdout,
                "offloaded": offloaded}
    finally:
        if run is not None:
            run.stop(signal.SIGKILL)
        lab.down()
        shutil.rmtree(f"/sys/fs/bpf/pyflow/{prefix}", ignore_errors=True)


@pytest.mark.netns
@pytest.mark.parametrize("mode", MODES)
def test_seed001_resubmit_end_to_end_matches_ebpf(sim, mode):
    """Through `pyflow run --backend doca --doca-mode MODE`: in vnf mode the first packets miss on the VF port's
    own copy of the pipes, reach that port's RSS queue and are resubmitted into that port's resubmit root."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    doca = resubmit_first_packets("doca", mode)
    ebpf = resubmit_first_packets("ebpf")
    n = len(RESUBMIT_FLOWS)
    assert doca["created"] == [f"{s}->20.1.1.100" for s in RESUBMIT_FLOWS]
    # every first packet crossed: forwarded by its new entry with ipv4.dst = ipv4.src + 1.1.1.1
    assert len(doca["frames"]) == n
    from pyflow.lab import ip_add, parse_frame

    parsed = [parse_frame(b"\0" * 12 + f) for f in doca["frames"]]
    got = sorted((p["ip_src"], p["ip_dst"]) for p in parsed)
    assert all(p["ip_csum_ok"] and p["l4_csum_ok"] for p in parsed)
    assert got == sorted((s, ip_add(s, "1.1.1.1")) for s in RESUBMIT_FLOWS)
    learned = ", ".join(f"{s}-flow: 1" for s in RESUBMIT_FLOWS)
    assert doca["last_line"] == (f"Static Entry Counters: root_net_to_host: 0, root_host_to_net_vf0: {n}, "
                                 f"n2h_to_vf0: 0, rss_pipe: {n}, ; "
                                 f"egress entry counters: {learned}, ; Pipe Miss counters: {n},")
    c = doca["counters"]
    assert c["pipes"]["h2n"] == {"hits": n, "misses": n} and c["pipes"]["root"]["hits"] == n
    assert (c["miss_handler"]["installed"], c["miss_handler"]["resubmitted"]) == (n, n)
    # everything the doca backend creates is in DOCA Flow: every pipe and entry reports offloaded, on ebpf none
    learned_rows = [k for k in doca["offloaded"] if k[0] == "pyflow_entry_offloaded" and k[2].endswith("-flow")]
    assert len(learned_rows) == n and {k[1] for k in doca["offloaded"] if k[0] == "pyflow_pipe_offloaded"} == \
        {"root", "n2h", "h2n"}
    assert set(doca["offloaded"].values()) == {1} and set(ebpf["offloaded"].values()) == {0}
    # and the same as the ebpf backend on the same frames
    for key in ("created", "frames", "last_line"):
        assert doca[key] == ebpf[key], key
    for key in ("static_entries", "learned_entries", "pipe_misses", "pipes"):
        assert c[key] == ebpf["counters"][key], key


# ---- bad input: one line, the pipe and the DOCA call, nothing half-created -----------------------------

def lpm_two_templates() -> dict:
    return {"name": "lpm2", "ports": [{"name": "a", "id": 0}, {"name": "b", "id": 1}],
            "pipes": [{"name": "root", "type": "basic", "root": True, "match": ["meta.port"], "fwd": "pipe:routes",
                       "fwd_miss": "drop", "entries": [{"name": "in_a", "match": {"meta.port": "a"}}]},
                      {"name": "routes", "type": "lpm", "match": ["ipv4.dst"], "actions": ["eth.src", "ipv4.src"],
                       "fwd": "port:b", "fwd_miss": "drop",
                       "entries": [{"name": "r1", "match": {"ipv4.dst": "10.0.0.0/8"},
                                    "actions": {"eth.src": "02:00:00:00:00:fe"}},
                                   {"name": "r2", "match": {"ipv4.dst": "10.1.0.0/16"},
                                    "actions": {"ipv4.src": "172.16.0.1"}}]}]}


@pytest.mark.parametrize("case", ["pipe_queues", "lpm_templates", "unsupported_action", "truncate", "vnf_ports"])
def test_bad_input_is_one_line_naming_pipe_and_call(sim, monkeypatch, case):
    from pyflow.errors import PyflowError

    if case == "pipe_queues":
        cfg, opts = load(CONF / "resubmit.json"), {"miss_threads": 16}
        expect = ("backend doca: library (17 pipe queues, switch,hws): doca_flow_cfg_set_pipe_queues refused: "
                  "DOCA_ERROR_INVALID_VALUE (17 pipe queues: 1 to 16 are supported)")
    elif case == "lpm_templates":
        cfg, opts = load(lpm_two_templates()), {}
        expect = ("backend doca: pipe routes: doca_flow_pipe_create refused: DOCA_ERROR_INVALID_VALUE (pipe routes: an "
                  "LPM pipe needs a match and at most one action template)")
    else:
        bad = copy.deepcopy(DIFF_CONFIG)
        bad["pipes"][1]["actions"].append("push_mpls")
        bad["pipes"][1]["entries"][0]["actions"]["push_mpls"] = {"labels": [100], "ttl": 64}
        cfg, opts = load(bad), {}
        expect = ("backend doca: pipe second: action push_mpls/pop_mpls (DOCA Flow 2.9 pushes and pops labels only "
                  "as a DOCA_FLOW_TUN_MPLS_O_UDP tunnel encap/decap")
    if case == "truncate":
        bad = json.loads((CONF / "broadcast.json").read_text())
        bad["sessions"][1]["members"][0]["truncate"] = 64
        cfg, opts = load(bad), {}
        expect = ("backend doca: session 2: member 0 truncates to 64 bytes (a DOCA mirror target copies the whole "
                  "packet; DOCA Flow documents no truncation)")
    elif case == "vnf_ports":
        monkeypatch.setenv("PYFLOW_DOCA_MODE", "vnf")
        bad = copy.deepcopy(DIFF_CONFIG)
        bad["ports"] += [{"name": f"x{i}", "id": 2 + i} for i in range(3)]
        cfg, opts = load(bad), {}
        expect = "backend doca: vnf mode: 5 ports bound, at most 4 (each port holds its own copy of the pipes)"
    inst, program = open_doca(cfg, **opts)
    try:
        with pytest.raises(PyflowError) as exc:
            program.apply(inst)
            inst.start()
        msg = str(exc.value)
        assert msg.startswith(expect) and len(msg.splitlines()) == 1, msg
        d = sim.dump()
        assert d["pipes"] == [] and d["ports"] == [] and not d["initialised"]
    finally:
        inst.close()


def test_cli_refuses_without_sdk_or_simulator_and_runs_with_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYFLOW_DOCA_SIM"}
    r = subprocess.run([PY, "-P", "-m", "pyflow", "run", "--backend", "doca", "-j", str(CONF / "resubmit.json")],
                       capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode != 0 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert "DOCA SDK" in r.stderr and "install DOCA 2.9" in r.stderr and "--backend ebpf" in r.stderr
    r = subprocess.run([PY, "-P", "-m", "pyflow", "run", "--backend", "doca", "--doca-sim", sim_library(), "-j",
                        str(CONF / "resubmit.json"), "--port", "uplink=0", "--port", "vf0=1", "--instance",
                        f"pfc{uuid.uuid4().hex[:4]}", "--duration", "0.3", "--stats-interval", "0.1",
                        "--", "-a", "0000:03:00.0,dv_flow_en=2", "-c", "0x3"],     # EAL flags reach the backend
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert ("Static Entry Counters: root_net_to_host: 0, root_host_to_net_vf0: 0, n2h_to_vf0: 0, rss_pipe: 0, ; "
            "egress entry counters: ; Pipe Miss counters: 0,") in r.stdout.splitlines()
    assert "DOCA Flow simulator" in r.stderr


# ---- the simulator's own contract --------------------------------------------------------------------

def test_simulator_enforces_documented_rules(tmp_path):
    exe = tmp_path / "test_rules"
    subprocess.run(["cc", "-O1", "-g", "-Wall", f"-I{ROOT / 'native/src'}", f"-I{ROOT / 'native/src/doca'}",
                    str(HERE / "sim" / "test_rules.c"), sim_library(), "-o", str(exe), "-lpthread",
                    f"-Wl,-rpath,{pathlib.Path(sim_library()).parent}"], check=True, capture_output=True, text=True)
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    checks = [line for line in r.stdout.splitlines() if line.startswith("ok ")]
    assert len(checks) >= 14, r.stdout
    assert len([c for c in checks if c.startswith("ok vnf:")]) >= 15, r.stdout


def test_doca_mode_option():
    """--doca-mode picks DOCA Flow's mode for run and plan; it is the doca backend's only, and checked."""
    def cli(*args):
        return subprocess.run([PY, "-P", "-m", "pyflow", *args], capture_output=True, text=True, timeout=60)

    r = cli("plan", "--backend", "doca", "--doca-mode", "vnf", "-j", str(CONF / "resubmit.json"))
    assert r.returncode == 0, r.stderr
    assert "mode vnf,hws" in r.stdout and "a copy of the pipes on every port" in r.stdout
    # each port its own root, reached by its own frames only: vf0's root has only vf0's entry
    assert "  resubmit_root@0 control is_root" in r.stdout and "  resubmit_root@1 control is_root" in r.stdout
    assert "  root@1 control default match [-] fwd changeable fwd_miss drop\n    entry root_host_to_net_vf0: *" \
        in r.stdout
    r = cli("plan", "--backend", "doca", "-j", str(CONF / "resubmit.json"))
    assert r.returncode == 0 and "mode switch,hws" in r.stdout and "pipes on switch port 0" in r.stdout
    assert "@" not in r.stdout
    r = cli("plan", "--backend", "ebpf", "--doca-mode", "vnf", "-j", str(CONF / "resubmit.json"))
    assert r.returncode != 0 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert "--doca-mode: only for --backend doca" in r.stderr
    r = cli("plan", "--backend", "doca", "--doca-mode", "bridge", "-j", str(CONF / "resubmit.json"))
    assert r.returncode != 0 and "--doca-mode" in r.stderr and "'switch', 'vnf'" in r.stderr


# ---- the miss path in process: learn, resubmit, age out through DOCA removals -----------------------------

def _inject(sim, port: int, frame: bytes) -> None:
    import ctypes

    res = (ctypes.c_uint8 * 64)()
    assert sim.lib.docasim_inject(port, frame, len(frame), 0, None, 0, ctypes.byref(res)) == 0


def test_learned_entries_resubmit_and_age_out(sim, doca_mode):
    """Learned entries carry DOCA's own aging (monitor.aging_sec = the idle timeout); the handler reads the aged
    ones with doca_flow_aging_handle on its queue and removes them. The simulator's clock is moved on, nothing
    sleeps: an entry hit within its timeout stays, the idle ones go."""
    from pyflow.native import ffi

    cfg_json = json.loads((CONF / "resubmit.json").read_text())
    cfg_json["miss_policies"][0]["idle_timeout"] = 1.5          # DOCA ages in whole seconds: 2
    cfg = load(cfg_json)
    inst, program = open_doca(cfg)
    try:
        program.apply(inst)
        inst.start()
        h2n = next(p for p in program.pipes if p.name == "h2n")
        srcs = ["192.168.99.101", "192.168.99.102", "192.168.99.103"]
        for s in srcs:
            _inject(sim, 1, bytes(Ether() / IP(src=s, dst="20.1.1.100") / UDP(dport=4000) / Raw(b"x" * 16)))
        assert wait_until(lambda: inst.miss_stats()["resubmitted"] == 3, 5)
        stats = inst.miss_stats()
        assert (stats["received"], stats["installed"]) == (3, 3)
        learned = inst.entry_list(h2n.id)
        names = sorted(program.learned_entry_name(h2n.id, ffi.addressof(i, "match")) for i in learned)
        assert names == [f"{s}-flow" for s in srcs]
        # the resubmitted frames were counted from h2n on: its entries once each, root not again
        assert inst.counters_pipe(h2n.id) == {"hits": 3, "misses": 3}
        assert inst.counters_pipe(program.pipe("root").id)["hits"] == 3
        copies = 2 if doca_mode == "vnf" else 1
        in_sim = [e for p in sim.dump()["pipes"] if p["name"].split("@")[0] == "h2n" for e in p["entries"]]
        assert len(in_sim) == 3 * copies and all(e["active"] and e["aging_sec"] == 2 for e in in_sim)
        sim.advance(1.2)
        # a second frame of a learned flow hits its entry in the simulated pipes, no miss
        _inject(sim, 1, bytes(Ether() / IP(src=srcs[0], dst="20.1.1.100") / UDP(dport=4000) / Raw(b"y" * 16)))
        assert inst.counters_pipe(h2n.id) == {"hits": 4, "misses": 3}
        time.sleep(0.1)  # gives a wrong aging (the handler polls every 10 ms) the chance to show; cannot fail late
        assert inst.miss_stats()["aged_out"] == 0 and len(inst.entry_list(h2n.id)) == 3
        sim.advance(1.0)
        # 2.2 s idle: aged by DOCA, removed with doca_flow_pipe_remove_entry; the one hit 1 s ago stays
        assert wait_until(lambda: inst.miss_stats()["aged_out"] == 2, 5)
        left = inst.entry_list(h2n.id)
        assert [program.learned_entry_name(h2n.id, ffi.addressof(i, "match")) for i in left] == [f"{srcs[0]}-flow"]
        sim.advance(1.5)
        assert wait_until(lambda: inst.miss_stats()["aged_out"] == 3, 5)
        assert inst.entry_list(h2n.id) == []
        assert [e for p in sim.dump()["pipes"] if p["name"].split("@")[0] == "h2n" for e in p["entries"]] == []
        # the flow learns again on its next frame
        _inject(sim, 1, bytes(Ether() / IP(src=srcs[1], dst="20.1.1.100") / UDP(dport=4000) / Raw(b"z" * 16)))
        assert wait_until(lambda: inst.miss_stats()["installed"] == 4, 5)
    finally:
        inst.close()


def test_entries_added_and_removed_while_running(sim):
    from pyflow.errors import PyflowError
    from pyflow.native import ffi, lib

    cfg = load(DIFF_CONFIG)
    inst, program = open_doca(cfg)
    try:
        program.apply(inst)
        inst.start()
        second = program.pipe("second")
        match = ffi.new("struct pf_fields *")
        match.ipv4_src = int.from_bytes(bytes([10, 0, 0, 7]), "little")
        entry = ffi.new("struct pf_entry *")
        entry.act.flags = lib.PF_ACT_DEC_TTL | lib.PF_ACT_SET_DSCP | lib.PF_ACT_SET_L4_SPORT
        entry.act.dscp, entry.act.l4_sport = 10, 0x3930
        eid = inst.entry_add(second.id, 0, 0, match, entry)
        frame = bytes(Ether() / IP(src="10.0.0.7", dst="10.0.0.2", ttl=9) / UDP(sport=1, dport=2) / Raw(b"z" * 8))
        v, out = inst.test_run(0, frame)
        assert v.kind == lib.PF_VERDICT_TX and v.entry_id == eid and v.out_port == 1
        got = IP(out[14:])
        assert (got.ttl, got.tos >> 2, got[UDP].sport) == (8, 10, 0x3039)
        assert next(p for p in sim.dump()["pipes"] if p["name"] == "second")["entries"][-1]["active"]
        # an action set the pipe was not created with: DOCA fixed its templates at doca_flow_pipe_create
        other = ffi.new("struct pf_entry *")
        other.act.flags = lib.PF_ACT_SET_IPV4_DST
        match.ipv4_src = int.from_bytes(bytes([10, 0, 0, 8]), "little")
        with pytest.raises(PyflowError, match="backend doca: pipe second: this entry's actions are not among"):
            inst.entry_add(second.id, 0, 0, match, other)
        inst.entry_del(eid)
        v, _ = inst.test_run(0, frame)
        assert v.kind == lib.PF_VERDICT_DROP
        assert len(next(p for p in sim.dump()["pipes"] if p["name"] == "second")["entries"]) == 2
    finally:
        inst.close()


# ---- batched installs: DOCA_FLOW_WAIT_FOR_BATCH, one doca_flow_entries_process per batch --------------------

@pytest.mark.parametrize("batched", [True, False], ids=["batched", "one_by_one"])
def test_learned_burst_installs_in_batches(sim, doca_mode, monkeypatch, batched):
    """A burst of new flows reaches the handler together: batched, the learner's round is pushed with
    DOCA_FLOW_WAIT_FOR_BATCH but its last entry and completed with one doca_flow_entries_process (per port);
    with PYFLOW_DOCA_NO_BATCH one push and one process call per entry. Either way every flow is installed,
    active and resubmitted."""
    if not batched:
        monkeypatch.setenv("PYFLOW_DOCA_NO_BATCH", "1")
    cfg = load(CONF / "resubmit.json")
    inst, program = open_doca(cfg)
    n = 24
    try:
        program.apply(inst)
        inst.start()
        h2n = next(p for p in program.pipes if p.name == "h2n")
        pushes0, calls0 = sim.queue_stats()
        # queued before the handler reads: one burst (the simulator's RSS ring holds them)
        sim.lib.docasim_rx_pause(True)
        for i in range(n):
            _inject(sim, 1, bytes(Ether() / IP(src=f"192.168.50.{i + 1}", dst="20.1.1.100") / UDP(dport=4000)))
        sim.lib.docasim_rx_pause(False)
        assert wait_until(lambda: inst.miss_stats()["resubmitted"] == n, 10)
        pushes, calls = sim.queue_stats()
        assert inst.miss_stats()["installed"] == n and len(inst.entry_list(h2n.id)) == n
        in_sim = [e for p in sim.dump()["pipes"] if p["name"].split("@")[0] == "h2n" for e in p["entries"]]
        assert len(in_sim) == n * (2 if doca_mode == "vnf" else 1) and all(e["active"] for e in in_sim)
        planes = 2 if doca_mode == "vnf" else 1
        if batched:
            # far fewer pushes than entries (the rounds' last entries), far fewer process calls than entries
            assert pushes - pushes0 < n * planes / 2 and calls - calls0 < n / 2, (pushes - pushes0, calls - calls0)
        else:
            assert pushes - pushes0 >= n * planes and calls - calls0 >= n * planes
    finally:
        inst.close()


def test_entry_add_batch_is_one_process_call(sim, doca_mode):
    """pf_entry_add_batch: the entries go with DOCA_FLOW_WAIT_FOR_BATCH but the last, one process call per
    port; each is then active and forwards its flow; a bad entry in the batch stops it there, the earlier
    ones stay added, the rest are not attempted."""
    from pyflow.errors import PyflowError
    from pyflow.instance import verdict_kind
    from pyflow.native import ffi, lib

    cfg = load(DIFF_CONFIG)
    inst, program = open_doca(cfg)
    try:
        program.apply(inst)
        inst.start()
        second = program.pipe("second")
        items = []
        for i in range(10):
            match = ffi.new("struct pf_fields *")
            match.ipv4_src = int.from_bytes(bytes([10, 7, 0, i + 1]), "little")
            entry = ffi.new("struct pf_entry *")
            entry.act.flags = lib.PF_ACT_DEC_TTL | lib.PF_ACT_SET_DSCP | lib.PF_ACT_SET_L4_SPORT
            entry.act.dscp, entry.act.l4_sport = 10, 0x3930
            items.append((second.id, 0, 0, match, entry))
        pushes0, calls0 = sim.queue_stats()
        ids = inst.entry_add_batch(items)
        pushes, calls = sim.queue_stats()
        planes = 2 if doca_mode == "vnf" else 1
        assert (pushes - pushes0, calls - calls0) == (planes, planes)
        for i, eid in enumerate(ids):
            frame = bytes(Ether() / IP(src=f"10.7.0.{i + 1}", dst="10.0.0.2", ttl=9) / UDP(sport=1, dport=2))
            v, out = inst.test_run(0, frame)
            assert verdict_kind(v) == "tx" and v.entry_id == eid and IP(out[14:]).ttl == 8
        bad = ffi.new("struct pf_entry *")
        bad.act.flags = lib.PF_ACT_PUSH_MPLS
        match = ffi.new("struct pf_fields *")
        match.ipv4_src = int.from_bytes(bytes([10, 7, 1, 1]), "little")
        more = items[:2] + [(second.id, 0, 0, match, bad)] + items[2:4]
        for m, _ in zip(more[:2], range(2)):
            m[3].ipv4_src = m[3].ipv4_src + (1 << 16)          # new keys 10.7.1.x... not yet added
        with pytest.raises(PyflowError) as exc:
            inst.entry_add_batch(more)
        assert "entry 2 of 5" in str(exc.value) and len(str(exc.value).splitlines()) == 1
        results = [r for r, _ in exc.value.batch_results]
        assert results[:2] == [0, 0] and results[2] < 0 and results[3:] == [-125, -125]   # ECANCELED
        assert exc.value.batch_added == 2
    finally:
        inst.close()
