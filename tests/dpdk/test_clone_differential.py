"""Clone sessions through both backends on real veths: the same frames leave the same ports.

BPF_PROG_RUN cannot show the copies TC makes on ebpf, so this runs the whole pipeline twice on one
lab: `pyflow run -b ebpf` (XDP + TC) and then the DPDK software pipes (net_af_packet vdevs) on the
same three veths, sends the same frames, and compares what each port received and the counters.
The configs put the clone action in a non-final pipe, so they pin down when a copy is taken: at the
end of the ingress walk (after the later pipes' actions), each copy through its member port's egress
pipe, the last clone action of a domain winning, copies leaving when the original is dropped.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import pytest

from tests.dpdk.test_dpdk import PY, Serve, capture, eal_args, send, sh
from tests.pyflow_testing import PyflowRun, counters_json

scapy = pytest.importorskip("scapy.all")
Ether, IP, UDP, Raw = scapy.Ether, scapy.IP, scapy.UDP, scapy.Raw

PORTS = ["a", "b", "c"]
NORMAL, I2E, E2E = "02:00:00:00:00:a0", "02:00:00:00:00:a3", "02:00:00:00:00:a4"

# every port's egress pipe stamps eth.src with the frame's packet_path; b's clones normal frames E2E to c
EGRESS = {"name": "egress", "type": "control", "domain": "egress", "match": ["meta.packet_path"],
          "actions": ["clone", "eth.src"], "fwd_miss": "drop", "entries": [
              {"name": "egress_normal", "match": {"meta.packet_path": "normal"},
               "actions": {"clone": 2, "eth.src": NORMAL}, "priority": 0},
              {"name": "egress_i2e_copy", "match": {"meta.packet_path": "clone_i2e"},
               "actions": {"eth.src": I2E}, "priority": 1},
              {"name": "egress_e2e_copy", "match": {"meta.packet_path": "clone_e2e"},
               "actions": {"eth.src": E2E}, "priority": 2}]}
SESSIONS = [{"id": 1, "name": "to_c", "members": [{"port": "c", "instance": 1, "class_of_service": 0, "truncate": 0}]},
            {"id": 2, "name": "to_c_cut", "members": [{"port": "c", "instance": 2, "class_of_service": 0,
                                                        "truncate": 80}]},
            {"id": 3, "name": "to_b", "members": [{"port": "b", "instance": 1, "class_of_service": 0, "truncate": 0}]}]


def config(name: str, root_entry: dict, second_entry: dict) -> dict:
    return {"name": name, "ports": [{"name": p, "id": i, "egress_pipe": "egress"} for i, p in enumerate(PORTS)],
            "sessions": SESSIONS,
            "pipes": [
                {"name": "root", "type": "basic", "root": True, "match": ["meta.port"], "actions": ["clone", "ipv4.dscp"],
                 "fwd_miss": "drop", "entries": [dict(root_entry, name="from_a", match={"meta.port": "a"})]},
                {"name": "second", "type": "basic", "match": ["ipv4.proto"], "actions": ["clone", "eth.dst", "ipv4.dscp"],
                 "fwd_miss": "drop", "entries": [dict(second_entry, name="rewrite", match={"ipv4.proto": "udp"})]},
                EGRESS]}


CASES = {
    # the I2E copy carries the next pipe's rewrite; the original's egress pipe makes an E2E copy
    "clone_then_rewrite": config("clone_then_rewrite", {"actions": {"clone": 1}, "fwd": "pipe:second"},
                                 {"actions": {"eth.dst": "02:00:00:00:00:bb", "ipv4.dscp": 10}, "fwd": "port:b"}),
    # two clone actions on the way: the last one (session 3) makes the copies
    "last_clone_wins": config("last_clone_wins", {"actions": {"clone": 1, "ipv4.dscp": 4}, "fwd": "pipe:second"},
                              {"actions": {"clone": 3, "eth.dst": "02:00:00:00:00:cc"}, "fwd": "port:c"}),
    # the original is dropped, its copies still leave
    "copies_of_a_dropped_frame": config("copies_of_a_dropped_frame", {"actions": {"clone": 1}, "fwd": "pipe:second"},
                                        {"actions": {"ipv4.dscp": 46}, "fwd": "drop"}),
}


@pytest.fixture
def lab():
    """Namespaces A, B, C each with one veth whose peer sits in namespace D (where the datapath runs)."""
    p = f"pfk{uuid.uuid4().hex[:5]}"
    ns = {s: p + s for s in ("a", "b", "c", "d")}
    xdp_pass = None
    try:
        import pyflow
        from pathlib import Path

        xdp_pass = Path(pyflow.__file__).parent / "bpf" / "xdp_pass.bpf.o"
        for n in ns.values():
            sh("ip", "netns", "add", n)
        for i, side in enumerate(PORTS):
            host, peer = f"{p}{side}0", f"{p}d{i}"
            sh("ip", "link", "add", host, "netns", ns[side], "type", "veth", "peer", "name", peer, "netns", ns["d"])
            for n, dev in ((ns[side], host), (ns["d"], peer)):
                sh("sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1", ns=n)
                sh("ethtool", "-K", dev, "tx", "off", "rx", "off", ns=n, check=False)
                sh("ip", "link", "set", dev, "up", ns=n)
            # XDP_REDIRECT into a veth needs an XDP program on its peer
            sh("ip", "link", "set", "dev", host, "xdp", "obj", str(xdp_pass), "sec", "xdp", ns=ns[side])
        yield {"prefix": p, "ns": ns}
    finally:
        for n in ns.values():
            subprocess.run(["ip", "netns", "del", n], capture_output=True)
        shutil.rmtree(f"/var/run/dpdk/{p}", ignore_errors=True)
        shutil.rmtree(f"/sys/fs/bpf/pyflow/{p}-ck", ignore_errors=True)


def frames() -> list[bytes]:
    return [bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                  IP(src="10.0.0.1", dst="10.0.0.2", ttl=64, id=i) / UDP(sport=1000 + i, dport=2000) /
                  Raw(b"PFCLONE" + bytes([i]) + bytes(120))) for i in range(3)]


def exchange(lab) -> dict[str, list[str]]:
    """The frames from A; per port, what its host received (hex, sorted)."""
    # capture() returns once its socket is bound; the window is what a datapath gets to deliver every copy
    caps = {s: capture(lab["ns"][s], f"{lab['prefix']}{s}0", 3) for s in PORTS}
    send(lab["ns"]["a"], f"{lab['prefix']}a0", frames(), gap=0.01)
    got = {}
    for s, cap in caps.items():
        out, _ = cap.communicate(timeout=30)
        got[s] = sorted(h for h in out.split() if b"PFCLONE" in bytes.fromhex(h))
    return got


def through_ebpf(lab, cfg: dict, tmp_path) -> dict:
    path = tmp_path / f"{cfg['name']}.json"
    path.write_text(json.dumps(cfg))
    instance = f"{lab['prefix']}-ck"
    ports = [a for i, s in enumerate(PORTS) for a in ("-p", f"{s}={lab['prefix']}d{i}")]
    run = PyflowRun(["-b", "ebpf", "-j", str(path), "-i", instance, "--fresh", *ports],
                    wrapper=["ip", "netns", "exec", lab["ns"]["d"]])
    try:
        run.ready()
        got = exchange(lab)
        snap = counters_json(instance)
    finally:
        run.stop()
    entries = {e["name"]: e["packets"] for e in snap["static_entries"]}
    return {"frames": got, "entries": entries,
            "tx": {s: snap["ports"][s]["tx_packets"] for s in PORTS}}


def through_dpdk(lab, cfg: dict) -> dict:
    p = lab["prefix"]
    vdevs = [f"net_af_packet{i},iface={p}d{i}" for i in range(len(PORTS))]
    job = {"name": p, "eal": eal_args(p, vdevs), "config": cfg,
           "bindings": {s: f"net_af_packet{i}" for i, s in enumerate(PORTS)}}
    srv = Serve(job, lab["ns"]["d"])
    try:
        got = exchange(lab)
        counters = srv.stop()
    finally:
        srv.kill()
        shutil.rmtree(f"/var/run/dpdk/{p}", ignore_errors=True)
    return {"frames": got, "entries": {n: e["packets"] for n, e in counters["entries"].items()},
            "tx": {s: counters["ports"][s]["tx_packets"] for s in PORTS}}


def describe(frames_hex: list[str]) -> list[tuple]:
    out = []
    for h in frames_hex:
        e = Ether(bytes.fromhex(h))
        out.append((e.src, e.dst, e[IP].tos >> 2 if IP in e else None, len(e)))
    return sorted(out)


@pytest.mark.parametrize("case", sorted(CASES))
def test_clones_leave_the_same_ports_on_ebpf_and_dpdk(lab, case, tmp_path):
    cfg = CASES[case]
    ebpf = through_ebpf(lab, cfg, tmp_path)
    dpdk = through_dpdk(lab, cfg)
    if ebpf != dpdk:
        pytest.fail(f"{case}: config {json.dumps(cfg)}\n  sent {[f.hex() for f in frames()]}\n"
                    f"  ebpf {json.dumps(ebpf)}\n  dpdk {json.dumps(dpdk)}\n"
                    f"  ebpf frames { {s: describe(f) for s, f in ebpf['frames'].items()} }\n"
                    f"  dpdk frames { {s: describe(f) for s, f in dpdk['frames'].items()} }")
    got = {s: describe(f) for s, f in ebpf["frames"].items()}
    assert got["a"] == []
    n, size = len(frames()), len(frames()[0])
    if case == "clone_then_rewrite":
        assert got["b"] == [(NORMAL, "02:00:00:00:00:bb", 10, size)] * n
        # the I2E copy was taken after the second pipe's rewrite; the E2E copy after b's egress pipe, cut at 80
        assert got["c"] == sorted([(I2E, "02:00:00:00:00:bb", 10, size)] * n + [(E2E, "02:00:00:00:00:bb", 10, 80)] * n)
    elif case == "last_clone_wins":
        # session 3 (to b), not session 1 (to c): the original on c, stamped normal, and its E2E copy on c
        assert got["b"] == [(I2E, "02:00:00:00:00:cc", 4, size)] * n
        assert got["c"] == sorted([(NORMAL, "02:00:00:00:00:cc", 4, size)] * n + [(E2E, "02:00:00:00:00:cc", 4, 80)] * n)
    else:
        assert got["b"] == []
        assert got["c"] == [(I2E, "02:00:00:00:00:02", 46, size)] * n
