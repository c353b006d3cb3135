"""`pyflow trace` on a DPDK instance (the software pipes) agrees with the XDP datapath and with
what the DPDK instance really sends: the same config and frames are traced on a running
`pyflow run --backend dpdk` (net_af_packet vdevs on veths) and on a throwaway ebpf instance
(`--config`); hop by hop, verdict and output frame must be the same, the DPDK instance's counters
must not move, and a frame really sent must leave as traced."""
from __future__ import annotations

import json
import os
import shutil
import signal

import pytest

from tests.netns.portlab import PortLab
from tests.pyflow_testing import PyflowRun, counters_json, pyflow_cli, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = {
    "static-forward": (["p1", "p2", "p3"], [
        ("p1", "ipv4.src=10.0.0.1 ipv4.dst=10.0.0.2 l4.dport=7000"),
        ("p1", "ipv4.src=10.0.0.1 ipv4.dst=10.0.0.3 l4.dport=7000"),
        ("p3", "mpls.label=200 ipv4.src=10.0.0.3 ipv4.dst=10.0.0.1"),
        ("p1", "ipv4.src=10.0.0.1 ipv4.dst=10.0.0.66")]),
    "mpls-encap": (["host", "wan"], [
        ("host", "ipv4.src=10.0.0.1 ipv4.dst=10.3.3.3 ipv4.dscp=46"),
        ("host", "ipv4.src=10.0.0.1 ipv4.dst=8.8.8.8 l4.sport=777 ipv4.dscp=18"),
        ("host", "ipv4.src=10.9.0.5 ipv4.dst=8.8.8.8 ipv4.dscp=34")]),
}


def _walk(r: dict) -> list:
    return [(h["pipe"], h["hit"], h.get("entry", {}).get("name"), h["fwd"], h.get("drop")) for h in r["hops"]]


@pytest.mark.parametrize("config", sorted(CASES))
def test_dpdk_trace_matches_ebpf_and_the_wire(unique_prefix, config):
    ports, probes = CASES[config]
    lab = PortLab(unique_prefix, ports)
    conf = os.path.join(ROOT, "conf", f"{config}.json")
    args = []
    for i, p in enumerate(ports):
        args += ["--port", f"{p}=net_af_packet{i}"]
    eal = ["-l", "0-1", "--no-huge", "-m", "512", "--file-prefix", unique_prefix, "--no-pci"]
    for i, p in enumerate(ports):
        eal += ["--vdev", f"net_af_packet{i},iface={lab.ports[p][1]}"]
    run = PyflowRun(["--backend", "dpdk", "-j", conf, "--instance", unique_prefix, *args, "--stats-interval", "5",
                     "--", *eal])
    try:
        run.ready(60)
        for port, fields in probes:
            before = counters_json(unique_prefix)
            dpdk = json.loads(pyflow_cli("trace", "-i", unique_prefix, "-p", port, "-o", "json",
                                         *fields.split()).stdout)
            ebpf = json.loads(pyflow_cli("trace", "--config", conf, "-p", port, "-o", "json", *fields.split()).stdout)
            assert _walk(dpdk) == _walk(ebpf), fields
            assert dpdk["verdict"] == ebpf["verdict"], fields
            assert dpdk["output"] == ebpf["output"], fields
            after = counters_json(unique_prefix)
            for key in ("static_entries", "pipes", "ports"):
                assert after[key] == before[key], f"trace moved {key}"
            if dpdk["verdict"]["kind"] == "tx":
                out, where = bytes.fromhex(dpdk["output"]), dpdk["verdict"]["port"]
                caps = lab.capture([where])
                lab.send(port, [bytes.fromhex(dpdk["input"])])
                wait_until(lambda: caps.frames[where], until=lambda got: out in got,
                           what=f"the traced output at {where}")
                caps.stop()
    finally:
        run.stop(signal.SIGINT, 20.0)
        lab.down()
        shutil.rmtree(f"/var/run/dpdk/{unique_prefix}", ignore_errors=True)


def test_dpdk_dpi_counters_as_on_xdp(unique_prefix):
    """ebpf-cast on the software pipes: PSI datagrams are never thinned, and the DPI counters count
    every class (and the sampled drops) as the XDP datapath does."""
    from pyflow.frames import build_frame

    ports = ["uplink", "vm1", "vm2", "vm3"]
    lab = PortLab(unique_prefix, ports)
    args, eal = [], ["-l", "0-1", "--no-huge", "-m", "512", "--file-prefix", unique_prefix, "--no-pci"]
    for i, p in enumerate(ports):
        args += ["--port", f"{p}=net_af_packet{i}"]
        eal += ["--vdev", f"net_af_packet{i},iface={lab.ports[p][1]}"]
    run = PyflowRun(["--backend", "dpdk", "-j", os.path.join(ROOT, "conf", "ebpf-cast.json"), "--instance",
                     unique_prefix, *args, "--stats-interval", "5", "--", *eal])
    try:
        run.ready(60)
        frame = {c: build_frame(f"ipv4.dst=10.9.9.9 l4.dport=1234 mpegts={c}")
                 for c in ("psi", "reference", "non-reference")}
        caps = lab.capture(["vm1"])
        lab.send("uplink", [frame["psi"]] * 6 + [frame["reference"]] * 3 + [frame["non-reference"]] * 20)
        # every frame classified, and sent to vm1 or dropped by the sampling
        snap = wait_until(lambda: counters_json(unique_prefix), until=lambda s: sum(s["dpi"]["frames"].values()) >= 29
                          and s["ports"]["vm1"]["tx_packets"] + s["ports"]["uplink"]["drops"]["sampled"] >= 29,
                          what="all 29 frames classified and sent or sampled out")
        caps.wait({"vm1": snap["ports"]["vm1"]["tx_packets"]})
        got = caps.stop()["vm1"]
        dpi = snap["dpi"]
        assert dpi["frames"] == {"none": 0, "reference": 3, "non_reference": 20, "psi": 6}
        assert dpi["dropped"]["psi"] == 0 and dpi["dropped"]["reference"] == 0
        sampled = snap["ports"]["uplink"]["drops"]["sampled"]
        assert dpi["dropped"]["non_reference"] == sampled
        assert got.count(frame["psi"]) == 6 and got.count(frame["reference"]) == 3
        assert got.count(frame["non-reference"]) == 20 - sampled
    finally:
        run.stop(signal.SIGINT, 20.0)
        lab.down()
        shutil.rmtree(f"/var/run/dpdk/{unique_prefix}", ignore_errors=True)
