"""plan(): what each backend would install, as JSON and as text."""
from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys

import pytest

from pyflow.config import load_config
from pyflow.plan import plan, render_plan_text

CONF = pathlib.Path(__file__).resolve().parents[2] / "conf"
BINDINGS = {"uplink": "0", "vf0": "1"}
TESTPMD = re.compile(r"^flow create \d+ (ingress|egress) group \d+ priority \d+ pattern (\S.*) / end actions "
                     r"(\S.*) / end$")


@pytest.fixture(scope="module")
def cfg():
    return load_config(CONF / "resubmit.json")


@pytest.mark.parametrize("backend", ["dpdk", "doca", "ebpf"], ids=lambda b: f"on-{b}")  # a bare "doca" id would mark the test as doca tier
def test_plan_json_is_stable(cfg, backend):
    a = json.dumps(plan(cfg, backend, BINDINGS), sort_keys=True)
    b = json.dumps(plan(load_config(CONF / "resubmit.json"), backend, BINDINGS), sort_keys=True)
    assert a == b
    data = json.loads(a)
    assert data["root"] == "root" and [p["name"] for p in data["pipes"]] == ["root", "n2h", "h2n"]
    assert data["miss_policies"][0]["set"] == {"ipv4.dst": "ipv4.src + 1.1.1.1"}


def _flows(d: dict) -> list[str]:
    return [r["flow"] for p in d["pipes"] for r in p["rules"]]


def test_dpdk_rules_are_the_backends_own(cfg):
    """The rules come from the dpdk backend's rule builder in a dry instance (no EAL, no device)."""
    d = plan(cfg, "dpdk", BINDINGS)["dpdk"]
    assert d["dry"] is True and d["rte_flow"] == "auto"
    assert [(p["name"], p["group"], p["software"]) for p in d["pipes"]] == [
        ("root", 0, None), ("n2h", 2, None), ("h2n", 3, None)]
    cmds = _flows(d)
    assert all(TESTPMD.match(c) for c in cmds), cmds
    assert "flow create 0 ingress group 0 priority 0 pattern eth / end actions count / jump group 2 / end" in cmds
    assert "flow create 1 ingress group 0 priority 1 pattern eth / end actions count / jump group 3 / end" in cmds
    assert "flow create 0 ingress group 2 priority 0 pattern eth / end actions count / port_id id 1 / end" in cmds
    # a pipe's misses continue that pipe in software: MARK(pipe) + the miss queue
    assert ("flow create 1 ingress group 3 priority 1 pattern eth / end actions count / mark id 1048578 / queue "
            "index 0 / end") in cmds
    # an entry matching meta.port is a rule on that port only
    root = d["pipes"][0]["rules"]
    assert [(r["entry_name"], r["port_name"]) for r in root if r["entry"] is not None] == [
        ("root_net_to_host", "uplink"), ("root_host_to_net_vf0", "vf0")]
    assert {r["pmd"] for p in d["pipes"] for r in p["rules"]} == {"offloaded if the PMD accepts it"}


def test_dpdk_software_reasons_are_the_backends_check():
    """What rte_flow cannot express is never described as a rule (no sample, no raw_encap)."""
    mpls = plan(load_config(CONF / "mpls-encap.json"), "dpdk")["dpdk"]
    reasons = {p["name"]: p["software"] for p in mpls["pipes"]}
    assert reasons["source_override"] == "clone, drop-percentage or MPLS push/pop"
    assert all(reasons.values()) and not _flows(mpls)
    bc = plan(load_config(CONF / "broadcast.json"), "dpdk")["dpdk"]
    assert bc["pipes"][0]["software"].startswith("forwards to a session")
    for path in CONF.glob("*.json"):
        if path.name != "schema.json":
            assert not any("sample" in f or "raw_encap" in f for f in _flows(plan(load_config(path), "dpdk")["dpdk"]))
    static = plan(load_config(CONF / "static-forward.json"), "dpdk")["dpdk"]
    assert any(p["software"].startswith("rules are created for every pipe or none") for p in static["pipes"])


def test_dpdk_rte_flow_off_is_planned(monkeypatch):
    monkeypatch.setenv("PYFLOW_DPDK_RTE_FLOW", "off")
    d = plan(load_config(CONF / "resubmit.json"), "dpdk", BINDINGS)["dpdk"]
    assert d["rte_flow"] == "off" and {p["software"] for p in d["pipes"]} == {"rte_flow off (PYFLOW_DPDK_RTE_FLOW=off)"}


def test_doca_graph(cfg):
    """The graph is the doca backend's own, from a dry run (no SDK, no simulator needed)."""
    d = plan(cfg, "doca", BINDINGS)["doca"]
    assert d["api"] == "DOCA Flow 2.9" and d["mode"] == "switch,hws"
    pipes = {p["name"]: p for p in d["pipes"]}
    assert [p["name"] for p in d["pipes"]] == ["rss_h2n", "n2h", "h2n", "root", "resubmit_root"]  # targets first
    root = pipes["root"]
    assert root["type"] == "control" and not root["is_root"] and root["fwd"] == "changeable"
    assert [(e["name"], e["match"], e["fwd"]) for e in root["entries"]] == [
        ("root_net_to_host", {"parser_meta.port_id": "0"}, "pipe:n2h"),
        ("root_host_to_net_vf0", {"parser_meta.port_id": "1"}, "pipe:h2n")]
    assert pipes["n2h"]["fwd"] == "port:1" and pipes["n2h"]["match"] == {"parser_meta.port_id": "4294967295"}
    h2n = pipes["h2n"]
    assert h2n["domain"] == "egress" and h2n["match"] == {"outer.ip4.src_ip": "ffffffff"}
    assert h2n["fwd_miss"] == "pipe:rss_h2n" and h2n["actions"][0]["fields"] == {"outer.ip4.dst_ip": "ffffffff"}
    assert pipes["rss_h2n"]["fwd"] == "rss:0"
    assert pipes["resubmit_root"]["is_root"]
    assert [e["fwd"] for e in pipes["resubmit_root"]["entries"]] == ["pipe:h2n", "pipe:root"]
    (learn,) = d["learn"]
    assert learn["add_entry_to"] == "h2n" and learn["actions"] == {"ipv4.dst": "<ipv4.src + 1.1.1.1>"}


def test_doca_plan_names_what_it_refuses():
    d = plan(load_config(CONF / "ebpf-cast.json"), "doca")["doca"]
    assert d["pipes"] == [] and "match on mpegts.frame (DOCA Flow does not parse MPEG-TS)" in d["refused"]
    assert "doca refuses this pipeline: backend doca: pipe video" in render_plan_text(plan(
        load_config(CONF / "ebpf-cast.json"), "doca"))


def test_ebpf_plan(cfg):
    """Programs and maps as libbpf opens the shipped objects; entries as the loader encodes them."""
    from pyflow.native import ffi, lib

    d = plan(cfg, "ebpf", {"uplink": "pfc-up", "vf0": "pfc-vf0"})["ebpf"]
    assert d["dry"] is True and d["pin_dir"] == "/sys/fs/bpf/pyflow/resubmit"
    progs = {p["name"]: p for p in d["programs"]}
    assert progs["pf_xdp_root"]["type"] == "xdp" and progs["pf_xdp_root"]["object"] == "datapath.bpf.o"
    assert [(a["ifname"], a["hook"]) for a in progs["pf_xdp_root"]["attach"]] == [("pfc-up", "xdp"),
                                                                                  ("pfc-vf0", "xdp")]
    assert [a["hook"] for a in progs["pf_tc_ingress"]["attach"]] == ["tc ingress"] * 2
    maps = {m["name"]: m for m in d["maps"]}
    assert maps["entries"] == {"name": "entries", "type": "hash", "key_size": ffi.sizeof("struct pf_flow_key"),
                               "value_size": ffi.sizeof("struct pf_entry"),
                               "max_entries": lib.PF_DEFAULT_MAX_ENTRIES}
    assert maps["lpm"]["type"] == "lpm_trie" and maps["lpm"]["key_size"] == ffi.sizeof("struct pf_lpm_key")
    assert maps["pipes"]["value_size"] == ffi.sizeof("struct pf_pipe")
    # exact entries on meta.port alone are elements of port_entries: one block of PF_MAX_PORTS per mask slot
    rows = [(e["map"], e["entry"], e["fwd"]) for e in d["entries"] if e["map"] not in ("pipes", "sessions")]
    assert rows == [("port_entries", "root_net_to_host", "pipe:1"), ("port_entries", "root_host_to_net_vf0", "pipe:2"),
                    ("port_entries", "n2h_to_vf0", "default")]
    keys = [int.from_bytes(bytes.fromhex(e["key"]), "little") for e in d["entries"] if e["map"] == "port_entries"]
    assert keys == [0, 1, lib.PF_MAX_PORTS]
    assert [e["pipe_name"] for e in d["entries"] if e["map"] == "pipes"] == ["root", "n2h", "h2n"]


def test_ebpf_plan_sizes_maps_like_the_loader():
    """lpm and hash pipes, buckets by weight; --max-entries reaches the sized maps of the object."""
    from pyflow.compiler import compile_program
    from pyflow.instance import Instance

    cfg = load_config(CONF / "mpls-encap.json")
    d = plan(cfg, "ebpf")["ebpf"]
    assert [(e["entry"], e["prefixlen"]) for e in d["entries"] if e["map"] == "lpm"] == [
        ("lpm_8_8_8", 24), ("lpm_10", 8), ("lpm_10_3_3_3", 32)]
    buckets = [(e["entry"], e["keys"]) for e in d["entries"] if e["map"] == "hash_buckets"]
    assert buckets == [("path_r3_w70", "0..6"), ("path_r7_r3_w30", "7..9")]
    with Instance("ebpf", "plan", dry=True, max_entries=1024) as inst:
        compile_program(cfg, {p.name: "" for p in cfg.ports}).apply(inst)
        maps = {m["name"]: m["max_entries"] for m in json.loads(inst.describe())["maps"]}
    assert maps["entries"] == maps["lpm"] == maps["entry_counters"] == 1024 and maps["pipes"] == 256


def test_plan_refuses_bad_bindings():
    from pyflow.errors import PyflowError

    with pytest.raises(PyflowError, match=r"^--port nosuch: no such port in the config \(ports: uplink, vf0\)$"):
        plan(load_config(CONF / "resubmit.json"), "dpdk", {"nosuch": "1"})
    with pytest.raises(PyflowError, match="interface 'veth9' is already port 0"):
        plan(load_config(CONF / "resubmit.json"), "ebpf", {"uplink": "veth9", "vf0": "veth9"})
    with pytest.raises(PyflowError, match="DPDK port 3 is already bound to port 0"):
        plan(load_config(CONF / "resubmit.json"), "dpdk", {"uplink": "3", "vf0": "3"})


@pytest.mark.parametrize("backend", ["dpdk", "doca", "ebpf"], ids=lambda b: f"on-{b}")  # a bare "doca" id would mark the test as doca tier
def test_plan_text(cfg, backend):
    text = render_plan_text(plan(cfg, backend, BINDINGS))
    assert text.startswith(f"plan for resubmit on {backend}")
    assert "root_host_to_net_vf0: meta.port=vf0 -> pipe:h2n" in text
    assert "learn rss_pipe: misses of h2n -> entry in h2n match ipv4.src; ipv4.dst = ipv4.src + 1.1.1.1" in text
    if backend == "dpdk":
        assert ("flow create 1 ingress group 3 priority 1 pattern eth / end actions count / mark id 1048578 / queue "
                "index 0 / end    # miss on vf0: offloaded if the PMD accepts it") in text
    if backend == "ebpf":
        assert "entries[pipe root mask 0] = entry root_net_to_host (id 0) -> pipe:n2h" in text
        assert "pipes[2] = pipe h2n (basic)" in text
        assert re.search(r"^  map entries \(hash\): key \d+ B, value \d+ B, max_entries 65536$", text, re.M)
    if backend == "doca":
        assert "resubmit_root control is_root" in text and "fwd_miss pipe:rss_h2n" in text


@pytest.mark.parametrize("path", sorted(p for p in CONF.glob("*.json") if p.name != "schema.json"),
                         ids=lambda p: p.stem)
def test_every_config_plans_on_every_backend(path):
    c = load_config(path)
    for backend in ("dpdk", "doca", "ebpf"):
        data = plan(c, backend)
        json.dumps(data, sort_keys=True)
        assert render_plan_text(data)
    for f in _flows(plan(c, "dpdk")["dpdk"]):
        assert TESTPMD.match(f), f


@pytest.mark.parametrize("args, message", [
    (["-b", "dpdk", "-p", "nosuch=1"], "pyflow plan: error: --port nosuch: no such port in the config"),
    (["-b", "ebpf", "-p", "uplink=pfx0", "-p", "vf0=pfx0"], "interface 'pfx0' is already port 0"),
    (["-b", "dpdk", "-p", "uplink"], "--port: expected NAME=IFNAME or NAME=DPDK_PORT, got 'uplink'"),
])
def test_plan_cli_bad_input_is_one_line(args, message):
    r = subprocess.run([sys.executable, "-m", "pyflow", "plan", "-j", str(CONF / "resubmit.json"), *args],
                       capture_output=True, text=True)
    assert r.returncode != 0 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr
