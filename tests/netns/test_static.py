"""Static forwarding on three hosts: MAC rewrite + TTL, MPLS push, MPLS pop, drop.

The config is written per test from the lab's real MAC addresses; frames are
sent from real namespaces through pyflow's XDP programs on the root-namespace
ends and captured on the far side. Every expectation is checked on the
captured frames and on the counters the datapath kept.
"""
from __future__ import annotations

import json
import signal

from pyflow.lab import Capture, UdpSink, eth, ipv4_udp, mpls, parse_frame, payload_tag, read_tag
from tests.pyflow_testing import tag_seqs, wait_until

N = 20
DPORT = 6000


def static_config(lab) -> dict:
    h1, h2, h3 = lab.host("h1"), lab.host("h2"), lab.host("h3")
    return {
        "name": "static-test",
        "ports": [{"name": "p1", "id": 1}, {"name": "p2", "id": 2}, {"name": "p3", "id": 3}],
        "pipes": [
            {"name": "root", "type": "control", "root": True, "match": ["eth.type"], "fwd_miss": "drop",
             "entries": [
                 {"name": "ipv4_in", "match": {"eth.type": "ipv4"}, "fwd": "pipe:l3"},
                 {"name": "mpls_in", "match": {"eth.type": "mpls"}, "fwd": "pipe:mpls"}]},
            {"name": "l3", "type": "basic", "match": ["ipv4.dst"], "fwd_miss": "drop",
             "actions": ["eth.src", "eth.dst", "dec_ttl", "push_mpls"],
             "entries": [
                 {"name": "to_h2", "match": {"ipv4.dst": "10.0.0.2"},
                  "actions": {"eth.src": h2.root_mac, "eth.dst": h2.mac, "dec_ttl": True}, "fwd": "port:p2"},
                 {"name": "to_h3_mpls", "match": {"ipv4.dst": "10.0.0.3"},
                  "actions": {"eth.dst": h3.mac, "push_mpls": [1000]}, "fwd": "port:p3"},
                 {"name": "blackhole", "match": {"ipv4.dst": "10.0.0.9"}, "fwd": "drop"}]},
            {"name": "mpls", "type": "basic", "match": ["mpls.label"], "fwd_miss": "drop",
             "actions": ["eth.dst", "pop_mpls"],
             "entries": [
                 {"name": "pop_to_h1", "match": {"mpls.label": 2000},
                  "actions": {"eth.dst": h1.mac, "pop_mpls": True}, "fwd": "port:p1"}]},
        ],
    }


def frames_for(tag: str, src: str, dst: str, count: int, dst_mac: str, src_mac: str) -> list[bytes]:
    return [eth(dst_mac, src_mac, 0x0800, ipv4_udp(src, dst, payload_tag(tag, i), dport=DPORT, ident=i))
            for i in range(count)]


def exchange(lab, sends, expect) -> dict[str, list[dict]]:
    """Send (host, frames) pairs with every host listening and capturing; the tagged frames each host saw,
    once every (host, tag) of `expect` has its N frames. A host sends what must be dropped before what
    must arrive: in order on its veth, the arrivals prove the drops were processed.

    UDP listeners keep hosts from answering test traffic with ICMP port-unreachable,
    which would otherwise be forwarded and counted too.
    """
    hosts = ("h1", "h2", "h3")
    sinks = [UdpSink(lab, h, DPORT) for h in hosts]
    caps = {h: Capture(lab, h) for h in hosts}
    try:
        for host, frames in sends:
            lab.send_frames(host, frames)
        wait_until(lambda: {(h, tag): len(tag_seqs(caps[h].frames, tag)) for h, tag in expect},
                   until=lambda got: all(n >= N for n in got.values()), what=f"{N} frames of each of {expect}")
    finally:
        got = {h: [p for p in map(parse_frame, c.stop()) if p and read_tag(p)] for h, c in caps.items()}
        for sink in sinks:
            sink.close()
    return got


def tagged(got: dict[str, list[dict]], host: str, tag: str) -> list[dict]:
    """The frames of `tag` that reached `host`; all N of them, each once."""
    frames = [p for p in got[host] if read_tag(p)[0] == tag]
    assert sorted(read_tag(p)[1] for p in frames) == list(range(N)), f"{tag} at {host}"
    return frames


def run_and_exchange(pyflow_run, lab, cfg, instance_name, sends, expect):
    """`pyflow run` CFG on the lab's ports, then exchange()."""
    run = pyflow_run("--backend", "ebpf", "-j", str(cfg), *lab.port_args(), "--instance", instance_name,
                     "--fresh", "--stats-interval", "0.5")
    return run, exchange(lab, sends, expect)


def mpls_frames(src_host, dst_mac, label: int, src: str, dst: str, tag: str) -> list[bytes]:
    inner = [ipv4_udp(src, dst, payload_tag(tag, i), dport=DPORT, ident=i) for i in range(N)]
    return [eth(dst_mac, src_host.mac, 0x8847, mpls([label], pkt, ttl=30)) for pkt in inner]


def test_static_forwarding(three_host_lab, instance_name, pyflow_run, read_counters, tmp_path):
    lab = three_host_lab
    h1, h2, h3 = lab.host("h1"), lab.host("h2"), lab.host("h3")
    cfg = tmp_path / "static.json"
    cfg.write_text(json.dumps(static_config(lab)))
    run, got = run_and_exchange(pyflow_run, lab, cfg, instance_name, [
        ("h1", frames_for("drop", "10.0.0.1", "10.0.0.9", N, h1.root_mac, h1.mac)),
        ("h1", frames_for("h2", "10.0.0.1", "10.0.0.2", N, h1.root_mac, h1.mac)),
        ("h1", frames_for("h3", "10.0.0.1", "10.0.0.3", N, h1.root_mac, h1.mac)),
        ("h3", mpls_frames(h3, h3.root_mac, 2000, "10.0.0.3", "10.0.0.1", "pop")),
    ], [("h2", "h2"), ("h3", "h3"), ("h1", "pop")])

    # MAC rewrite + TTL decrement, checksums recomputed.
    for p in tagged(got, "h2", "h2"):
        assert (p["eth_src"], p["eth_dst"]) == (h2.root_mac, h2.mac)
        assert p["ttl"] == 63 and p["ip_csum_ok"] and p["l4_csum_ok"]
        assert (p["ip_src"], p["ip_dst"]) == ("10.0.0.1", "10.0.0.2")

    # MPLS push: one label, bottom of stack, the IPv4 packet intact behind it.
    for p in tagged(got, "h3", "h3"):
        assert p["eth_dst"] == h3.mac
        assert [(m["label"], m["s"]) for m in p["mpls"]] == [(1000, 1)]
        assert p["ttl"] == 64 and p["ip_csum_ok"] and p["l4_csum_ok"]

    # MPLS pop: plain IPv4 again at h1.
    for p in tagged(got, "h1", "pop"):
        assert p["eth_type"] == 0x0800 and not p["mpls"] and p["eth_dst"] == h1.mac
        assert p["ip_csum_ok"] and p["l4_csum_ok"] and p["ip_dst"] == "10.0.0.1"

    # Dropped: never seen anywhere.
    assert not any(read_tag(p)[0] == "drop" for frames in got.values() for p in frames)

    snap, packets = read_counters(instance_name)
    assert packets["to_h2"] == N and packets["to_h3_mpls"] == N and packets["blackhole"] == N
    assert packets["pop_to_h1"] == N
    assert packets["ipv4_in"] == 3 * N and packets["mpls_in"] == N
    assert snap["ports"]["p1"]["drops"]["action"] == N
    assert snap["ports"]["p1"]["rx_packets"] == 3 * N and snap["ports"]["p3"]["rx_packets"] == N

    # The resubmit example's line, printed while running.
    assert any(line.startswith("Static Entry Counters: ipv4_in: ") for line in run.stdout)

    assert run.stop(signal.SIGINT) == 0
    assert "Signal 2 received, preparing to exit..." in run.stdout


def test_shipped_static_forward_config(three_host_lab, instance_name, pyflow_run, read_counters):
    """conf/static-forward.json exactly as shipped: router MAC + TTL, NAT, MPLS push and pop, drop.

    The config rewrites no destination MAC (lab MACs are random), so senders address
    the far host's MAC directly, as an L2-adjacent router would have resolved it.
    """
    from pathlib import Path

    lab = three_host_lab
    h1, h2, h3 = lab.host("h1"), lab.host("h2"), lab.host("h3")
    cfg = Path(__file__).resolve().parents[2] / "conf" / "static-forward.json"
    run, got = run_and_exchange(pyflow_run, lab, cfg, instance_name, [
        ("h1", frames_for("drop", "10.0.0.1", "10.0.0.66", N, h2.mac, h1.mac)),
        ("h1", frames_for("h2", "10.0.0.1", "10.0.0.2", N, h2.mac, h1.mac)),
        ("h1", frames_for("h3", "10.0.0.1", "10.0.0.3", N, h3.mac, h1.mac)),
        ("h2", frames_for("nat", "10.0.0.2", "10.0.0.99", N, h3.mac, h2.mac)),
        ("h3", mpls_frames(h3, h1.mac, 200, "10.0.0.3", "10.0.0.1", "pop")),
    ], [("h2", "h2"), ("h3", "h3"), ("h3", "nat"), ("h1", "pop")])

    for p in tagged(got, "h2", "h2"):
        assert p["eth_src"] == "02:00:00:00:00:fe" and p["ttl"] == 63
        assert p["ip_csum_ok"] and p["l4_csum_ok"]
    for p in tagged(got, "h3", "h3"):
        assert [(m["label"], m["s"]) for m in p["mpls"]] == [(100, 1)]
        assert p["ip_csum_ok"] and p["l4_csum_ok"] and p["ip_dst"] == "10.0.0.3"
    for p in tagged(got, "h3", "nat"):
        assert p["ip_dst"] == "10.0.0.3" and p["ip_csum_ok"] and p["l4_csum_ok"]
    for p in tagged(got, "h1", "pop"):
        assert p["eth_type"] == 0x0800 and not p["mpls"] and p["ip_csum_ok"] and p["l4_csum_ok"]
    assert not any(read_tag(p)[0] == "drop" for frames in got.values() for p in frames)

    _, packets = read_counters(instance_name)
    for name in ("h1_to_h2", "h1_to_h3_mpls", "h1_drop_66", "h2_nat_to_h3", "h3_pop_200"):
        assert packets[name] == N, name
    assert packets["classify_ipv4"] == 4 * N and packets["classify_mpls"] == N
    assert run.stop(signal.SIGINT) == 0
