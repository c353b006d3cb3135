"""`pyflow plan --backend dpdk` equals what a run installs, for every shipped config.

The plan is a dry dpdk instance (no EAL): the same compiled program applied, the same rule
builder describing each pipe's rte_flow rules or why it stays in the software pipes. The run is a
real EAL (--no-huge --no-pci, net_null vdevs) in its own process with the config applied and
started; its pf_instance_describe must list the same pipes, rules and reasons, and for each rule
the PMD's own answer where the plan says "offloaded if the PMD accepts it".
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIGS = sorted(p for p in (ROOT / "conf").glob("*.json") if p.name != "schema.json")
PLAN_ANSWER = "offloaded if the PMD accepts it"
# a pipeline every rule of which rte_flow can express: masks, prefixes, rewrites, jumps
OFFLOADABLE = {
    "name": "offloadable",
    "ports": [{"name": "a", "id": 0}, {"name": "b", "id": 1}],
    "pipes": [
        {"name": "acl", "type": "control", "root": True, "match": ["meta.port", "eth.dst", "ipv4.dst", "l4.dport"],
         "actions": ["eth.dst"], "fwd_miss": "drop", "entries": [
             {"name": "to_b", "priority": 1, "match": {"meta.port": "a", "ipv4.dst": "10.1.0.0/16"},
              "fwd": "pipe:nat"},
             {"name": "mcast", "priority": 2, "match": {"eth.dst": {"value": "01:00:00:00:00:00", "mask": "01:00:00:00:00:00"}},
              "fwd": "drop"},
             {"name": "dns", "priority": 3, "match": {"ipv4.dst": "10.0.0.53", "l4.dport": 53},
              "actions": {"eth.dst": "02:00:00:00:00:35"}, "fwd": "port:b"}]},
        {"name": "nat", "type": "basic", "match": ["ipv4.src"], "actions": ["ipv4.src", "dec_ttl"], "fwd": "port:b", "fwd_miss": "miss",
         "entries": [{"name": "nat1", "match": {"ipv4.src": "192.168.0.1"},
                      "actions": {"ipv4.src": "10.9.9.1", "dec_ttl": True}}]},
    ],
}

RUN = r"""
import json, sys
from pyflow.compiler import compile_program
from pyflow.config.loader import load_config
from pyflow.instance import Instance
from pyflow.plan import name_description
job = json.loads(sys.argv[1])
cfg = load_config(job["config"])
program = compile_program(cfg, job["bindings"])
inst = Instance("dpdk", job["name"], eal_args=job["eal"])
try:
    program.apply(inst)
    inst.start()
    data = name_description("dpdk", json.loads(inst.describe()), cfg, program.entry_ids)
    print(json.dumps({"describe": data, "info": inst.info()}))
    inst.stop()
finally:
    inst.close()
"""


def comparable(detail: dict) -> dict:
    """What plan and run must agree on: everything but the PMD's answers and the offload outcome."""
    out = json.loads(json.dumps(detail))
    for key in ("dry", "offload"):
        out.pop(key)
    for p in out["pipes"]:
        p.pop("offloaded")
        for r in p["rules"]:
            r.pop("pmd")
    return out


def run_dpdk(config, bindings: dict[str, str], nports: int, mode: str = "auto") -> dict:
    prefix = f"pfp{uuid.uuid4().hex[:5]}"
    eal = ["pyflow", "--no-huge", "-m", "512", "--file-prefix", prefix, "-l", "0-1", "--no-pci",
           "--log-level", "lib.eal:warning"]
    # no-rx: a net_null port otherwise receives zeroed frames, which would miss and be learned
    for i in range(nports):
        eal += ["--vdev", f"net_null{i},no-rx=1"]
    job = {"name": prefix, "eal": eal, "config": config, "bindings": bindings}
    try:
        r = subprocess.run([sys.executable, "-c", RUN, json.dumps(job)], capture_output=True, text=True,
                           timeout=120, env=dict(os.environ, PYFLOW_DPDK_RTE_FLOW=mode))
    finally:
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("config", CONFIGS + [OFFLOADABLE],
                         ids=lambda c: c.stem if isinstance(c, pathlib.Path) else c["name"])
def test_plan_equals_what_the_run_installed(config, monkeypatch):
    from pyflow.config.loader import load_config
    from pyflow.plan import plan

    monkeypatch.setenv("PYFLOW_DPDK_RTE_FLOW", "auto")
    cfg = load_config(str(config) if isinstance(config, pathlib.Path) else config)
    bindings = {p.name: str(i) for i, p in enumerate(cfg.ports)}       # DPDK port ids of the vdevs
    planned = plan(cfg, "dpdk", bindings)["dpdk"]
    assert planned["dry"] is True
    assert all(r["pmd"] == PLAN_ANSWER for p in planned["pipes"] for r in p["rules"])
    run = run_dpdk(str(config) if isinstance(config, pathlib.Path) else config, bindings, len(cfg.ports))
    described = run["describe"]
    assert described["dry"] is False and described["offload"] == run["info"]["mode_reason"]
    assert comparable(described) == comparable(planned)
    # the PMD answered for every rule (net_null has no rte_flow: it refuses, and nothing is offloaded)
    answers = [r["pmd"] for p in described["pipes"] for r in p["rules"]]
    assert all(a.startswith("refused by the PMD: ") for a in answers), answers
    assert not any(p["offloaded"] for p in described["pipes"])
    if config is OFFLOADABLE:
        flows = [r["flow"] for p in planned["pipes"] for r in p["rules"]]
        assert not any(p["software"] for p in planned["pipes"]) and len(flows) == 2 * 3 + 1 + 2 * 2
        assert ("flow create 0 ingress group 0 priority 1 pattern eth / ipv4 dst spec 10.1.0.0 dst mask 255.255.0.0 "
                "/ end actions count / jump group 2 / end") in flows
        assert any("eth dst spec 01:00:00:00:00:00 dst mask 01:00:00:00:00:00 / end actions count / drop / end" in f
                   for f in flows)
        assert any("ipv4 dst is 10.0.0.53 / udp dst is 53 / end actions count / set_mac_dst mac_addr "
                   "02:00:00:00:00:35 / port_id id 1 / end" in f for f in flows)
        assert ("flow create 1 ingress group 2 priority 0 pattern eth / ipv4 src is 192.168.0.1 / end actions count "
                "/ set_ipv4_src ipv4_addr 10.9.9.1 / dec_ttl / port_id id 1 / end") in flows
        assert any("group 2 priority 1 pattern eth / end actions count / mark id 1048577 / queue index 0 / end" in f
                   for f in flows)


def test_rte_flow_off_is_planned_as_run(monkeypatch):
    """PYFLOW_DPDK_RTE_FLOW=off: plan and run both keep every pipe in software, with the same reason."""
    from pyflow.config.loader import load_config
    from pyflow.plan import plan

    monkeypatch.setenv("PYFLOW_DPDK_RTE_FLOW", "off")
    config = ROOT / "conf" / "resubmit.json"
    cfg = load_config(str(config))
    bindings = {p.name: str(i) for i, p in enumerate(cfg.ports)}
    planned = plan(cfg, "dpdk", bindings)["dpdk"]
    run = run_dpdk(str(config), bindings, len(cfg.ports), mode="off")["describe"]
    assert planned["rte_flow"] == run["rte_flow"] == "off"
    assert {p["software"] for p in planned["pipes"]} == {"rte_flow off (PYFLOW_DPDK_RTE_FLOW=off)"}
    assert comparable(run) == comparable(planned)
