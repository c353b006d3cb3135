"""What the XDP fast path does to stay cheap must not change what it decides:
the MPEG-TS frame class is classified only when a lookup needs it, the
ingress port and the last-seen clock come from a per-CPU memo, and hit entries
are used in place. Each test pins one of these against the plain semantics."""
from __future__ import annotations

import time

from scapy.all import IP, TCP, UDP, Dot1Q, Ether, Raw, raw

from tests.pyflow_testing import wait_until

from .test_datapath import XDP_DROP, XDP_PASS, XDP_REDIRECT, eth, ts_payload

CLOCK_MONOTONIC_COARSE = 6      # linux/time.h; what bpf_ktime_get_coarse_ns reads, not exposed by the time module


def ts_frames():
    return {
        "reference": raw(eth() / IP() / UDP(sport=1, dport=1234) / Raw(ts_payload(True))),
        "non_reference": raw(eth() / IP() / UDP(sport=1, dport=1234) / Raw(ts_payload(False))),
        "none": raw(eth() / IP() / UDP(sport=1, dport=1234) / Raw(b"\x46" + bytes(187))),
    }


def test_frame_class_is_classified_by_a_later_pipe_after_the_head_moved(dp):
    """The root pipe does not look at mpegts.frame and pushes a VLAN tag (the
    payload moves by 4 bytes); the second pipe matches the class."""
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields(ip_proto=0xFF)], fwd=(lib.PF_FWD_PIPE, 2),
            fwd_miss=(lib.PF_FWD_DROP, 0), root=True)
    dp.entry(1, dp.fields(ip_proto=17), flags=lib.PF_ACT_PUSH_VLAN, vlan_id=7)
    dp.pipe(2, lib.PF_PIPE_BASIC, [dp.fields(mpegts_frame=0xFF)], fwd_miss=(lib.PF_FWD_DROP, 0))
    ref = dp.entry(2, dp.fields(mpegts_frame=lib.PF_MPEGTS_REFERENCE), fwd=(lib.PF_FWD_PORT, 1))
    nonref = dp.entry(2, dp.fields(mpegts_frame=lib.PF_MPEGTS_NON_REFERENCE), fwd=(lib.PF_FWD_PORT, 0))
    none = dp.entry(2, dp.fields(mpegts_frame=lib.PF_MPEGTS_NONE), fwd=(lib.PF_FWD_KERNEL, 0))
    frames = ts_frames()

    ret, v, out = dp.run(0, frames["reference"])
    assert (ret, v.out_port, v.entry_id, v.hops) == (XDP_REDIRECT, 1, ref, 2)
    assert Ether(out)[Dot1Q].vlan == 7
    ret, v, _ = dp.run(0, frames["non_reference"])
    assert (ret, v.out_port, v.entry_id) == (XDP_REDIRECT, 0, nonref)
    ret, v, _ = dp.run(0, frames["none"])
    assert (ret, v.kind, v.entry_id) == (XDP_PASS, lib.PF_VERDICT_PASS, none)


def test_frame_class_in_a_second_mask_slot(dp):
    """A control pipe whose first mask slot does not use the class and whose
    second does: the class is there when the second slot is looked up, and the
    lower priority value still wins."""
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_CONTROL, [dp.fields(ip_proto=0xFF), dp.fields(mpegts_frame=0xFF)],
            fwd_miss=(lib.PF_FWD_DROP, 0), root=True)
    by_proto = dp.entry(1, dp.fields(ip_proto=17), fwd=(lib.PF_FWD_PORT, 0), mask_idx=0, priority=10)
    by_class = dp.entry(1, dp.fields(mpegts_frame=lib.PF_MPEGTS_REFERENCE), fwd=(lib.PF_FWD_PORT, 1),
                        mask_idx=1, priority=1)
    frames = ts_frames()
    assert dp.run(0, frames["reference"])[1].entry_id == by_class
    assert dp.run(0, frames["non_reference"])[1].entry_id == by_proto
    assert dp.run(0, frames["none"])[1].entry_id == by_proto


def test_a_rebound_interface_is_not_taken_for_its_old_port(dp):
    """The ingress port memo must notice that the interface it remembers for a
    port is no longer that port's."""
    lib = dp.lib
    a, b = dp.ifnames[0], dp.ifnames[0][:-1] + "b"
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields(port=0xFFFFFFFF)], fwd_miss=(lib.PF_FWD_DROP, 0), root=True)
    from_0 = dp.entry(1, dp.fields(port=0), fwd=(lib.PF_FWD_PORT, 1))
    from_2 = dp.entry(1, dp.fields(port=2), fwd=(lib.PF_FWD_KERNEL, 0))
    frame = raw(eth() / IP() / UDP())

    assert dp.run(0, frame)[1].entry_id == from_0        # remembers: a is port 0
    dp.port(0, b)
    dp.port(2, a)
    ret, v, _ = dp.run(2, frame)                         # arrives on a again
    assert (ret, v.entry_id) == (XDP_PASS, from_2)
    ret, v, _ = dp.run(0, frame)                         # and port 0 is b now
    assert (ret, v.entry_id) == (XDP_REDIRECT, from_0)
    assert (dp.port_counters(0).rx_packets, dp.port_counters(2).rx_packets) == (2, 1)


def test_alternating_ingress_ports_each_keep_their_id(dp):
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields(port=0xFFFFFFFF)], fwd_miss=(lib.PF_FWD_DROP, 0), root=True)
    ids = {p: dp.entry(1, dp.fields(port=p), fwd=(lib.PF_FWD_PORT, 1 - p)) for p in (0, 1)}
    frame = raw(eth() / IP() / TCP())
    for i in range(6):
        port = i % 2
        ret, v, _ = dp.run(port, frame)
        assert (ret, v.entry_id, v.out_port) == (XDP_REDIRECT, ids[port], 1 - port)
    assert [dp.port_counters(p).rx_packets for p in (0, 1)] == [3, 3]
    assert [dp.port_counters(p).tx_packets for p in (0, 1)] == [3, 3]


def _last_seen(dp, pipe: int, entry_id: int) -> int:
    out = dp.ffi.new("struct pf_entry_info[]", 8)
    count = dp.ffi.new("uint32_t *")
    dp.call(dp.lib.pf_entry_list, dp.inst, pipe, out, 8, count)
    return next(out[i].last_seen_ns for i in range(count[0]) if out[i].entry.id == entry_id)


def test_last_seen_stamps_follow_the_monotonic_clock(dp):
    """Stamps come from the coarse clock (what the idle sweeper compares with
    CLOCK_MONOTONIC): never ahead of it, a few ticks behind at most, and they
    move on when the entry is hit again later."""
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields(ip_proto=0xFF)], fwd_miss=(lib.PF_FWD_DROP, 0), root=True)
    eid = dp.entry(1, dp.fields(ip_proto=17), fwd=(lib.PF_FWD_PORT, 1))
    frame = raw(eth() / IP() / UDP())
    assert _last_seen(dp, 1, eid) == 0

    dp.run(0, frame)
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    first = _last_seen(dp, 1, eid)
    assert 0 < after - first < 50_000_000

    wait_until(lambda: time.clock_gettime_ns(CLOCK_MONOTONIC_COARSE), 1, 0.001, until=lambda now: now > first,
               what=f"the coarse clock to pass the first stamp {first}")
    dp.run(0, frame)
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    second = _last_seen(dp, 1, eid)
    assert first < second <= after and after - second < 50_000_000


def test_entry_changed_between_frames_is_used_as_it_is_now(dp):
    """Hit entries are read in place from the table: an update between two
    frames shows in the second, actions included."""
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields(ip_proto=0xFF)], fwd_miss=(lib.PF_FWD_DROP, 0), root=True)
    eid = dp.entry(1, dp.fields(ip_proto=17), fwd=(lib.PF_FWD_PORT, 1), flags=lib.PF_ACT_SET_DSCP, dscp=10)
    frame = raw(eth() / IP() / UDP())
    ret, v, out = dp.run(0, frame)
    assert (ret, v.out_port, Ether(out)[IP].tos >> 2) == (XDP_REDIRECT, 1, 10)
    assert dp.entry(1, dp.fields(ip_proto=17), fwd=(lib.PF_FWD_PORT, 0), flags=lib.PF_ACT_SET_DSCP,
                    dscp=20) == eid
    ret, v, out = dp.run(0, frame)
    assert (ret, v.out_port, Ether(out)[IP].tos >> 2) == (XDP_REDIRECT, 0, 20)
    dp.call(lib.pf_entry_del, dp.inst, eid)
    ret, v, _ = dp.run(0, frame)
    assert (ret, v.drop_reason) == (XDP_DROP, lib.PF_DROP_ACTION)
