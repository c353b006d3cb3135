"""`pyflow plan --backend ebpf` equals what a run installs, for every shipped config.

Each config gets its own lab (`pyflow lab up -j CONFIG`); the plan is made with the lab's
interfaces as bindings, then the same config is applied to a real ebpf instance on those
interfaces and started. What the running instance reports through pf_instance_describe (programs
attached per port as the kernel answers, maps as bpf() reports them, the table entries read back
from the kernel maps) must equal the plan's json, except the XDP mode the kernel chose.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.pyflow_testing import pyflow_cli

CONF = Path(__file__).resolve().parents[2] / "conf"
CONFIGS = sorted(p for p in CONF.glob("*.json") if p.name != "schema.json")
PLAN_MODE = "native, falling back to generic"


def without_mode(detail: dict) -> dict:
    """The description with the attach mode left out (the plan says what start asks for)."""
    out = json.loads(json.dumps(detail))
    for prog in out["programs"]:
        for a in prog["attach"]:
            a.pop("mode")
    out.pop("dry")
    return out


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_plan_equals_what_the_run_installed(path, pfl_prefix, instance_name):
    from pyflow.compiler import compile_program
    from pyflow.config import load_config
    from pyflow.instance import Instance
    from pyflow.plan import name_description, plan

    up = json.loads(pyflow_cli("lab", "up", "-j", str(path), "--prefix", pfl_prefix, "-o", "json").stdout)
    try:
        cfg = load_config(path)
        cfg.name = instance_name       # the run's pins and the plan's pin_dir are the instance's
        planned = json.loads(pyflow_cli("plan", "-b", "ebpf", "-j", str(path), "-o", "json",
                                        *[a for p, i in up["ports"].items() for a in ("-p", f"{p}={i}")]).stdout)
        data = plan(cfg, "ebpf", up["ports"])["ebpf"]
        assert data["dry"] is True and planned["ebpf"]["programs"] == data["programs"]
        assert all(a["mode"] == PLAN_MODE for prog in data["programs"] if prog["type"] == "xdp"
                   for a in prog["attach"])
        program = compile_program(cfg, up["ports"])
        inst = Instance("ebpf", instance_name, fresh=True)
        try:
            program.apply(inst)
            inst.start()
            run = name_description("ebpf", json.loads(inst.describe()), cfg, program.entry_ids)
        finally:
            inst.destroy()
            inst.close()
    finally:
        pyflow_cli("lab", "down", "--prefix", pfl_prefix)
    assert run["dry"] is False
    # every port has the XDP program, in a mode the kernel reports
    (xdp,) = [p for p in run["programs"] if p["type"] == "xdp"]
    assert sorted(a["ifname"] for a in xdp["attach"]) == sorted(up["ports"].values())
    assert {a["mode"] for a in xdp["attach"]} <= {"native", "generic"}
    assert without_mode(run) == without_mode(data)
    # the entries the config names are all there, each once
    named = [e["entry"] for e in run["entries"] if e.get("entry")]
    assert sorted(named) == sorted(program.entry_ids) and len(set(named)) == len(named)
