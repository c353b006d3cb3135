"""Packet resubmit under a burst: thousands of new flows sent back to back, every first packet delivered.

The frames leave the user namespace as fast as one AF_PACKET socket can send them (about ten times
faster than one handler thread installs flows), so the missed frames queue in the AF_XDP rx ring
while the handler works through them in batches: one map write installs a batch's new flows, then
every frame is resubmitted. Accounting is exact: every miss the datapath counted either reached
the handler or is in ring_drops (the kernel's own AF_XDP drop counters).
"""
from __future__ import annotations

import socket

import pytest

from pyflow.lab import ip_add
from tests.netns.test_miss import lab, pipeline  # noqa: F401  (fixtures: one resubmit lab per module)
from tests.netns.test_miss import SO_RCVBUFFORCE, parse_udp, udp_frame
from tests.pyflow_testing import wait_until


@pytest.fixture
def far(lab):
    sock = lab.capture_socket("net")
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    yield sock
    sock.close()


VETH_RING = 256   # the veth's XDP receive ring: frames beyond it are dropped before any XDP program runs


def burst(lab, inst, program, sources, copies=1):
    """Every source `copies` times in a row, back to back from one socket.

    Sent in chunks that fit the veth's receive ring, each once the datapath has taken the previous
    one off it (its rx counter): on a loaded machine the veth's NAPI can fall behind one socket and
    drop frames before pyflow sees them. The handler is still ~10x slower than the sender, so the
    misses pile up in the AF_XDP ring exactly as in an unpaced burst.
    """
    user, net = lab.host("user"), lab.host("net")
    vf0 = next(p.id for p in program.ports if p.name == "vf0")
    frames = [udp_frame(user.mac, net.mac, src, "20.1.1.100", i * copies + c)
              for i, src in enumerate(sources) for c in range(copies)]
    rx_before = inst.counters_port(vf0)["rx_packets"]
    with lab.socket("user", socket.AF_PACKET, socket.SOCK_RAW, 0) as tx:
        tx.bind((user.ifname, 0))
        for start in range(0, len(frames), VETH_RING // 2):
            chunk = frames[start:start + VETH_RING // 2]
            for frame in chunk:
                tx.send(frame)
            seen = rx_before + start + len(chunk)
            assert wait_until(lambda: inst.counters_port(vf0)["rx_packets"] >= seen, timeout=10.0, interval=0.02), \
                f"the datapath saw {inst.counters_port(vf0)['rx_packets'] - rx_before} of {seen - rx_before} frames"
    return len(frames)


def collect(sock, count, timeout):
    got = []
    sock.settimeout(timeout)
    try:
        while len(got) < count:
            parsed = parse_udp(sock.recv(4096))
            if parsed:
                got.append(parsed)
    except socket.timeout:
        pass
    return got


def sources(n, base=60):
    return [f"10.{base + i // 62500}.{i // 250 % 250}.{i % 250 + 1}" for i in range(n)]


def test_burst_of_new_flows_delivers_every_first_packet(lab, far, pipeline):
    flows = sources(2000)
    inst, program = pipeline(max_flows=4096)
    sent = burst(lab, inst, program, flows)
    got = collect(far, sent, timeout=10.0)
    # a frame is delivered inside its resubmit call, just before the call is counted
    wait_until(lambda: inst.miss_stats()["resubmitted"] >= len(got), timeout=10.0, interval=0.02)
    stats = inst.miss_stats()
    misses = inst.counters_pipe(program.pipe("h2n").id)["misses"]
    # exact accounting first, so a failure says where the frames went
    assert misses == sent
    assert stats["received"] + stats["ring_drops"] == misses, stats
    assert stats["ring_drops"] == 0, stats
    assert stats["installed"] == sent and stats["resubmitted"] == sent, stats
    assert sorted(s for s, *_ in got) == sorted(flows)
    assert all(d == ip_add(s, "1.1.1.1") and ip_ok and udp_ok for s, d, _, ip_ok, udp_ok in got)
    # the queued misses were installed in batches, not one map write per flow
    assert 0 < stats["install_batches"] < sent


def test_burst_with_each_flow_twice_is_one_install_per_flow(lab, far, pipeline):
    flows = sources(1000, base=70)
    inst, program = pipeline(max_flows=4096)
    sent = burst(lab, inst, program, flows, copies=2)
    got = collect(far, sent, timeout=10.0)
    h2n = program.pipe("h2n").id
    # every miss handled: some second frames hit their entry and never missed
    wait_until(lambda: (inst.counters_pipe(h2n)["misses"], inst.miss_stats()["resubmitted"]), timeout=10.0,
               interval=0.02, until=lambda mr: mr[0] == mr[1])
    stats = inst.miss_stats()
    misses = inst.counters_pipe(program.pipe("h2n").id)["misses"]
    assert stats["ring_drops"] == 0 and stats["received"] == misses, stats
    # one install per flow; every other frame that missed (the second one, if it came before the
    # install was done) was resubmitted behind it; a second frame after the install hit the entry
    assert stats["installed"] == len(flows), stats
    assert stats["coalesced"] == stats["received"] - len(flows) and stats["resubmitted"] == stats["received"], stats
    assert len(got) == sent
    # the handler resubmits in arrival order, so a flow whose frames both went through it keeps their
    # order; only a second frame that came after the install (it hit the entry, no miss) can overtake
    # the first while that one is being resubmitted: at most one flow per second frame that did not miss
    seqs = {}
    for src, _, seq, *_ in got:
        seqs.setdefault(src, []).append(seq)
    assert all(len(v) == 2 for v in seqs.values())
    reordered = sum(v != sorted(v) for v in seqs.values())
    hit_directly = len(flows) - stats["coalesced"]
    assert reordered <= hit_directly, (reordered, hit_directly, stats)
    learned = {info.entry.id for info in inst.entry_list(program.pipe("h2n").id, max_entries=4096)
               if info.entry.flags & 1}
    assert len(learned) == len(flows)
    counts = inst.counters_entries(sorted(learned))
    assert all(c[0] == 2 for c in counts.values())
