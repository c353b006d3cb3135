"""PSA clone sessions (as in the P4 PSA clone-E2E example) through `pyflow run` on a three-host lab.

conf/psa-clone-e2e.json: frames from m1 go to m4 and are cloned ingress-to-egress
to session 1 (m4); the egress pipe clones normal frames egress-to-egress to
session 5 (m2) and stamps eth.src with the frame's packet_path, so each frame
received proves which path it took: ...:a0 normal, ...:a3 CLONE_I2E, ...:a4 CLONE_E2E.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest

from tests.pyflow_testing import wait_until

CONF = os.path.join(os.path.dirname(__file__), "..", "..", "conf", "psa-clone-e2e.json")
PIN_ROOT = "/sys/fs/bpf/pyflow"
NORMAL, I2E, E2E = "02:00:00:00:00:a0", "02:00:00:00:00:a3", "02:00:00:00:00:a4"


@pytest.fixture
def pfr_lab():
    from pyflow.lab import Lab

    with Lab("three-host", prefix=f"pfr{uuid.uuid4().hex[:4]}") as lab:
        yield lab
        shutil.rmtree(os.path.join(PIN_ROOT, f"{lab.prefix}-cl"), ignore_errors=True)


@pytest.fixture
def clone_run(pfr_lab, pyflow_run):
    """pyflow run of the PSA config: m1 = h1, m4 = h2, m2 = h3."""
    instance = f"{pfr_lab.prefix}-cl"
    binding = {"m1": "h1", "m4": "h2", "m2": "h3"}
    ports = [a for port, host in binding.items() for a in ("-p", f"{port}={pfr_lab.host(host).root_ifname}")]
    pyflow_run("-b", "ebpf", "-j", CONF, "-i", instance, "--fresh", *ports)
    return instance


def send_and_capture(lab, want: dict[str, int], count: int = 3, size: int = 200) -> dict[str, list]:
    """UDP frames from h1; returns, per host, the received UDP frames (scapy), once each host in `want`
    has at least that many. The copies leave before the originals they are made from arrive, so once
    these are in, a copy that should not exist would be too."""
    from pyflow.lab import Capture
    from scapy.all import IP, UDP, Ether, raw

    frame = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2") /
                UDP(sport=1000, dport=2000) / bytes(size))
    caps = {h: Capture(lab, h) for h in ("h1", "h2", "h3")}
    def ours(frames):
        return [p for p in map(Ether, list(frames)) if UDP in p and p[UDP].dport == 2000]

    try:
        lab.send_frames("h1", [frame] * count)
        wait_until(lambda: {h: len(ours(caps[h].frames)) for h in want},
                   until=lambda got: all(got[h] >= n for h, n in want.items()), what=f"UDP frames per host {want}")
    finally:
        got = {h: ours(c.stop()) for h, c in caps.items()}
    return got


def stamps(frames) -> list[str]:
    return sorted(p.src for p in frames)


def test_i2e_and_e2e_copies_arrive_with_their_packet_path(pfr_lab, clone_run, read_counters):
    got = send_and_capture(pfr_lab, {"h2": 6, "h3": 3})
    assert got["h1"] == []
    # m4: the original (normal) and the I2E copy; m2: the E2E copy the egress pipe of m4 made
    assert stamps(got["h2"]) == sorted([NORMAL] * 3 + [I2E] * 3)
    assert stamps(got["h3"]) == [E2E] * 3

    snap, packets = read_counters(clone_run)
    assert (packets["from_m1"], packets["egress_clone_e2e"], packets["egress_i2e_copy"],
            packets["egress_e2e_copy"]) == (3, 3, 3, 3)
    assert (snap["ports"]["m4"]["tx_packets"], snap["ports"]["m2"]["tx_packets"]) == (6, 3)


def test_session_members_change_while_running(pfr_lab, clone_run, pyflow_cli):
    # session 1 gains m2 (truncating its copies to 64 bytes): h3 now also gets an I2E copy, cut short
    pyflow_cli("session", "add-member", "-i", clone_run, "1", "m2", "2", "3", "--truncate", "64")
    listed = json.loads(pyflow_cli("session", "list", "-i", clone_run, "-o", "json").stdout)
    assert {s["id"]: len(s["members"]) for s in listed} == {1: 2, 5: 1}
    got = send_and_capture(pfr_lab, {"h2": 4, "h3": 4}, count=2)
    assert stamps(got["h2"]) == sorted([NORMAL] * 2 + [I2E] * 2)
    assert stamps(got["h3"]) == sorted([E2E] * 2 + [I2E] * 2)
    assert all(len(p) == 64 for p in got["h3"] if p.src == I2E)
    assert all(len(p) > 200 for p in got["h3"] if p.src == E2E)

    # session 5 loses its only member: no more E2E copies
    pyflow_cli("session", "delete-member", "-i", clone_run, "5", "m2", "1")
    got = send_and_capture(pfr_lab, {"h2": 4, "h3": 2}, count=2)
    assert stamps(got["h3"]) == [I2E] * 2
    assert stamps(got["h2"]) == sorted([NORMAL] * 2 + [I2E] * 2)

    bad = pyflow_cli("session", "delete-member", "-i", clone_run, "5", "m2", "1", check=False)
    assert bad.returncode != 0 and "no member" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
