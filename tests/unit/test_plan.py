"""plan(): what each backend would install, as JSON and as text."""
from __future__ import annotations

import json
import pathlib
import re

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


def test_dpdk_testpmd_commands(cfg):
    d = plan(cfg, "dpdk", BINDINGS)["dpdk"]
    cmds = [r["command"] for r in d["rules"]]
    assert all(TESTPMD.match(c) for c in cmds), cmds
    assert "flow create 0 ingress group 0 priority 0 pattern eth / end actions count / jump group 1 / end" in cmds
    assert "flow create 1 ingress group 0 priority 1 pattern eth / end actions count / jump group 2 / end" in cmds
    assert "flow create 0 ingress group 1 priority 0 pattern eth / end actions count / port_id id 1 / end" in cmds
    # H2N misses go to the miss queue, on the port whose traffic reaches it only
    assert "flow create 1 ingress group 2 priority 1 pattern eth / end actions count / queue index 0 / end" in cmds
    assert not any(c.startswith("flow create 0 ingress group 2") for c in cmds)
    (learn,) = d["learned_rule_template"]
    assert TESTPMD.match(learn["command"])
    assert "ipv4 src is <ipv4.src>" in learn["command"]
    assert "set_ipv4_dst ipv4_addr <ipv4.src + 1.1.1.1> / count / port_id id 0" in learn["command"]


def test_dpdk_patterns_for_other_configs():
    cmds = [r["command"] for r in plan(load_config(CONF / "mpls-encap.json"), "dpdk")["dpdk"]["rules"]]
    assert all(TESTPMD.match(c) for c in cmds), cmds
    assert any("ipv4 dst spec 10.0.0.0 dst prefix 8" in c and "priority 24" in c for c in cmds)
    assert any("ipv4 src spec 10.9.0.0 src prefix 16" in c for c in cmds)
    setup = plan(load_config(CONF / "mpls-encap.json"), "dpdk")["dpdk"]["setup"]
    assert "set raw_encap 1 eth type is 0x8847 / mpls label is 1000000 / end_set" in setup
    bc = plan(load_config(CONF / "broadcast.json"), "dpdk")["dpdk"]
    assert any("eth dst spec 01:00:00:00:00:00 dst mask 01:00:00:00:00:00" in r["command"] for r in bc["rules"])
    assert any(s.startswith("set sample_actions 0 port_id id") for s in bc["setup"])


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
    d = plan(load_config(CONF / "broadcast.json"), "doca")["doca"]
    assert d["pipes"] == [] and "clone sessions / multicast groups are not supported" in d["refused"]
    assert "doca refuses this pipeline: backend doca: session" in render_plan_text(plan(
        load_config(CONF / "broadcast.json"), "doca"))


def test_ebpf_plan(cfg):
    d = plan(cfg, "ebpf", {"uplink": "pfc-up", "vf0": "pfc-vf0"})["ebpf"]
    assert d["pin_dir"] == "/sys/fs/bpf/pyflow/resubmit"
    assert d["programs"][0]["hook"] == "xdp"
    assert [a["ifname"] for a in d["programs"][0]["attach"]] == ["pfc-up", "pfc-vf0"]
    assert [(e["map"], e["entry"], e["fwd"]) for e in d["entries"]] == [
        ("port_entries", "root_net_to_host", "pipe:n2h"), ("port_entries", "root_host_to_net_vf0", "pipe:h2n"),
        ("port_entries", "n2h_to_vf0", "port:vf0")]
    assert d["miss"]["policies"][0]["set"] == {"ipv4.dst": "ipv4.src + 1.1.1.1"}
    assert d["miss"]["policies"][0]["install_map"] == "entries_c1"     # ipv4.src: one word


@pytest.mark.parametrize("backend", ["dpdk", "doca", "ebpf"], ids=lambda b: f"on-{b}")  # a bare "doca" id would mark the test as doca tier
def test_plan_text(cfg, backend):
    text = render_plan_text(plan(cfg, backend, BINDINGS))
    assert text.startswith(f"plan for resubmit on {backend}")
    assert "root_host_to_net_vf0: meta.port=vf0 -> pipe:h2n" in text
    assert "learn rss_pipe: misses of h2n -> entry in h2n match ipv4.src; ipv4.dst = ipv4.src + 1.1.1.1" in text
    if backend == "dpdk":
        assert "flow create 1 ingress group 2 priority 1 pattern eth / end actions count / queue index 0 / end" in text
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
    for r in plan(c, "dpdk")["dpdk"]["rules"]:
        assert TESTPMD.match(r["command"]), r["command"]
