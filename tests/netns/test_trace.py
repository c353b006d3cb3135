"""`pyflow trace` against what the datapath really does.

Every shipped config runs with `pyflow run` on one namespace per port. For each probe frame the
trace of the running instance (its loaded XDP program and maps) is taken first, then the same
frame is really sent in on that port and captured on every port: the traced verdict and output
frame must be what arrived (nothing, where the trace says drop / kernel). A trace must leave every
counter and the learned flows as they were.
"""
from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.netns.portlab import PortLab
from tests.pyflow_testing import PyflowRun, counters_json, pyflow_cli, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PIN_ROOT = "/sys/fs/bpf/pyflow"

# (config, ingress port, frame fields, expected verdict)
PROBES = [
    ("static-forward", "p1", "ipv4.src=10.0.0.1 ipv4.dst=10.0.0.2 l4.dport=7000", "tx"),
    ("static-forward", "p1", "ipv4.src=10.0.0.1 ipv4.dst=10.0.0.3 l4.dport=7000", "tx"),
    ("static-forward", "p3", "mpls.label=200 ipv4.src=10.0.0.3 ipv4.dst=10.0.0.1 l4.dport=7000", "tx"),
    ("static-forward", "p2", "ipv4.src=10.0.0.2 ipv4.dst=10.0.0.99 tcp.flags=0x02 l4.dport=22", "tx"),
    ("static-forward", "p1", "ipv4.src=10.0.0.1 ipv4.dst=10.0.0.66", "drop"),
    ("broadcast", "p1", "eth.dst=ff:ff:ff:ff:ff:ff ipv4.src=10.0.0.1 ipv4.dst=10.0.0.255", "replicate"),
    ("broadcast", "p2", "eth.dst=01:00:5e:00:00:01 ipv4.dst=224.0.0.1", "replicate"),
    ("broadcast", "p3", "eth.dst=02:00:00:00:00:09 ipv4.dst=10.0.0.9", "drop"),
    ("ebpf-cast", "uplink", "ipv4.dst=192.168.1.10 l4.dport=80", "tx"),
    ("ebpf-cast", "vm2", "ipv4.src=10.1.0.12 ipv4.dst=192.168.7.7 l4.dport=5000", "tx"),
    ("ebpf-cast", "uplink", "ipv4.dst=10.9.9.9 l4.dport=1234 mpegts=psi", "replicate"),
    ("ebpf-cast", "uplink", "ipv4.dst=10.9.9.9 l4.dport=1234 mpegts=reference", "replicate"),
    ("mpls-encap", "host", "ipv4.src=10.0.0.1 ipv4.dst=10.3.3.3 l4.dport=53", "tx"),
    ("mpls-encap", "host", "ipv4.src=10.0.0.1 ipv4.dst=10.20.30.40 l4.dport=53", "tx"),
    ("mpls-encap", "host", "ipv4.src=10.0.0.1 ipv4.dst=8.8.8.8 l4.sport=1111 l4.dport=53", "tx"),
    ("mpls-encap", "host", "ipv4.src=10.9.1.1 ipv4.dst=8.8.8.8 l4.dport=53", "tx"),
    ("mpls-encap", "host", "ipv4.src=10.0.0.1 ipv4.dst=192.0.2.1", "pass"),
    ("psa-clone-e2e", "m2", "ipv4.dst=10.0.0.1", "drop"),
]
CONFIGS = sorted({p[0] for p in PROBES} | {"resubmit"})


def _config_ports(name: str) -> list[str]:
    with open(os.path.join(ROOT, "conf", f"{name}.json")) as f:
        return [p["name"] for p in json.load(f)["ports"]]


@pytest.fixture
def running(unique_prefix):
    """start(config) -> (PortLab, instance name, PyflowRun); everything removed afterwards."""
    made = []

    def start(config: str):
        lab = PortLab(unique_prefix, _config_ports(config))
        inst = f"{unique_prefix}-{config}"[:40]
        made.append((lab, inst))
        run = PyflowRun(["--backend", "ebpf", "-j", os.path.join(ROOT, "conf", f"{config}.json"), *lab.port_args(),
                         "--instance", inst, "--fresh", "--stats-interval", "5"])
        made[-1] += (run,)
        run.ready()
        return lab, inst, run

    yield start
    for lab, inst, *run in made:
        if run:
            run[0].stop()
        lab.down()
        shutil.rmtree(os.path.join(PIN_ROOT, inst), ignore_errors=True)


def trace_json(inst: str, port: str, *frame_args: str) -> dict:
    return json.loads(pyflow_cli("trace", "--instance", inst, "--port", port, "-o", "json", *frame_args).stdout)


def check_against_wire(lab, inst: str, result: dict, expected_kind: str) -> None:
    """Send the traced frame for real; what arrived where must be what the trace said."""
    frame = bytes.fromhex(result["input"])
    port = result["port"]
    verdict = result["verdict"]
    received = counters_json(inst)["ports"][port]["rx_packets"]
    caps = lab.capture()
    lab.send(port, [frame])
    # the datapath took the frame in, and what it sends out has arrived: only then can nothing elsewhere mean none
    wait_until(lambda: counters_json(inst)["ports"][port]["rx_packets"], until=lambda n: n > received,
               what=f"{port} to count the frame in")
    outs = {"tx": [verdict.get("port")],
            "replicate": [m for m in verdict.get("members", []) if m != port]}.get(verdict["kind"], [])
    caps.wait({p: 1 for p in outs})
    got = caps.stop()
    assert verdict["kind"] == expected_kind, result
    others = {p: fs for p, fs in got.items() if p != port}
    if verdict["kind"] == "tx":
        out = bytes.fromhex(result["output"])
        assert got[verdict["port"]] == [out], f"{verdict['port']}: got {[f.hex() for f in got[verdict['port']]]}"
        assert all(not fs for p, fs in others.items() if p != verdict["port"])
    elif verdict["kind"] == "replicate":
        out = bytes.fromhex(result["output"])
        members = [m for m in verdict["members"] if m != port]
        assert members
        for m in members:
            assert got[m] == [out], f"member {m}: got {[f.hex() for f in got[m]]}"
        assert all(not fs for p, fs in others.items() if p not in members)
    else:   # drop, pass (to the host stack of the ingress side), miss
        assert all(not fs for fs in others.values()), {p: len(fs) for p, fs in others.items()}


@pytest.mark.parametrize("config", sorted({p[0] for p in PROBES}))
def test_trace_agrees_with_the_datapath(running, config):
    lab, inst, _run = running(config)
    for cfg, port, fields, kind in PROBES:
        if cfg != config:
            continue
        result = trace_json(inst, port, *fields.split())
        assert result["hops"], result
        check_against_wire(lab, inst, result, kind)
        # the text form names the same verdict
        text = pyflow_cli("trace", "--instance", inst, "--port", port, "--hex", result["input"]).stdout
        assert f"verdict: {kind}" in text


def _counter_state(inst: str) -> dict:
    snap = counters_json(inst)
    return {k: snap[k] for k in ("static_entries", "learned_entries", "pipes", "ports", "miss_handler", "dpi")}


def test_trace_of_a_miss_learns_nothing_then_matches_the_learned_flow(running):
    """resubmit.json: the trace of a first packet says which entry the miss policy would install and
    changes nothing; once a real frame was learned, the trace follows the new entry and its output is
    the frame that really left on the uplink."""
    lab, inst, _run = running("resubmit")
    fields = ["ipv4.src=192.168.99.101", "ipv4.dst=20.1.1.100", "l4.dport=9000"]
    before = _counter_state(inst)
    for _ in range(3):
        first = trace_json(inst, "vf0", *fields)
    assert first["verdict"]["kind"] == "miss"
    h2n = first["hops"][-1]
    assert h2n["pipe"] == "h2n" and not h2n["hit"]
    assert h2n["would_install"][0]["match"] == {"ipv4.src": "192.168.99.101"}
    assert h2n["would_install"][0]["actions"] == {"ipv4.dst": "193.169.100.102"}
    assert h2n["would_install"][0]["entry_name"] == "192.168.99.101-flow"
    assert _counter_state(inst) == before, "a trace changed counters or learned a flow"

    frame = bytes.fromhex(first["input"])
    caps = lab.capture(["uplink"])
    lab.send("vf0", [frame])
    caps.wait({"uplink": 1})
    got = caps.stop()
    assert wait_until(lambda: counters_json(inst)["learned_entries"], 5)
    assert len(got["uplink"]) == 1
    again = trace_json(inst, "vf0", *fields)
    assert again["verdict"] == {"kind": "tx", "port": "uplink"}
    assert again["hops"][-1]["entry"]["name"] == "192.168.99.101-flow"
    assert again["hops"][-1]["changed"]["ipv4.dst"] == ["20.1.1.100", "193.169.100.102"]
    assert bytes.fromhex(again["output"]) == got["uplink"][0]
    after_learn = _counter_state(inst)
    trace_json(inst, "vf0", *fields)
    assert _counter_state(inst) == after_learn


def test_trace_with_config_alone_matches_the_running_instance(running):
    lab, inst, _run = running("static-forward")
    args = ["--port", "p1", "-o", "json", "ipv4.src=10.0.0.1", "ipv4.dst=10.0.0.3"]
    live = json.loads(pyflow_cli("trace", "--instance", inst, *args).stdout)
    alone = json.loads(pyflow_cli("trace", "--config", os.path.join(ROOT, "conf", "static-forward.json"),
                                  *args).stdout)
    assert alone["verdict"] == live["verdict"] == {"kind": "tx", "port": "p3"}
    assert alone["output"] == live["output"]
    assert [h["entry"]["name"] for h in alone["hops"]] == ["classify_ipv4", "h1_to_h3_mpls"]


def test_trace_errors_are_one_line(running, unique_prefix, tmp_path):
    lab, inst, _run = running("static-forward")
    cases = [
        (["--instance", inst, "--port", "p9", "ipv4.dst=10.0.0.2"], "no port 'p9'"),
        (["--instance", f"{unique_prefix}-none", "--port", "p1", "ipv4.dst=10.0.0.2"], "no running pyflow instance"),
        (["--instance", inst, "--port", "p1", "ipv4.dst=10.0.0.300"], "ipv4.dst=10.0.0.300"),
        (["--instance", inst, "--port", "p1", "ipv9.dst=1"], "unknown field 'ipv9.dst'"),
        (["--instance", inst, "--port", "p1", "--hex", "0011zz"], "--hex: not hex"),
        (["--instance", inst, "--port", "p1", "--pcap", str(tmp_path / "none.pcap")], "--pcap"),
    ]
    for args, needle in cases:
        r = pyflow_cli("trace", *args, check=False)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, r.stderr)
