"""Replication decisions of the XDP program, through BPF_PROG_RUN: a group
forward is one DEVMAP broadcast (XDP_REDIRECT) counted on every member but
the ingress port; a clone action hands the frame to TC (XDP_PASS) instead of
redirecting it; a group whose ports are not set up drops with a reason."""
from __future__ import annotations

import struct

from scapy.all import IP, UDP, Ether, raw

from .conftest import XDP_PASS, XDP_REDIRECT

FRAME = raw(Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") / IP() / UDP() / b"replicate")


def session(dp, sid: int, ports: list[int]):
    s = dp.ffi.new("struct pf_session *")
    s.nmembers = len(ports)
    for i, p in enumerate(ports):
        s.members[i].port, s.members[i].in_use = p, 1
    dp.call(dp.lib.pf_session_set, dp.inst, sid, s)


def test_group_forward_is_one_broadcast_counted_per_member(dp):
    lib = dp.lib
    session(dp, 3, [0, 1])
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields(port=0xFFFFFFFF)], fwd=(lib.PF_FWD_SESSION, 3), root=True)
    dp.entry(1, dp.fields(port=0))
    action, verdict, _ = dp.run(0, FRAME)
    assert (action, verdict.kind, verdict.out_port) == (XDP_REDIRECT, lib.PF_VERDICT_REPLICATE, 3)
    # the ingress port is a member but gets no copy
    assert (dp.port_counters(0).tx_packets, dp.port_counters(1).tx_packets) == (0, 1)


def test_group_with_unbound_member_is_refused(dp):
    import pytest
    from pyflow.errors import NativeError

    with pytest.raises(NativeError, match="port 5 is not bound"):
        session(dp, 4, [1, 5])


def test_forward_to_undefined_group_drops(dp):
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields(port=0xFFFFFFFF)], fwd=(lib.PF_FWD_SESSION, 9), root=True)
    dp.entry(1, dp.fields(port=0))
    action, verdict, _ = dp.run(0, FRAME)
    assert verdict.kind == lib.PF_VERDICT_DROP and verdict.drop_reason == lib.PF_DROP_ACTION_FAIL


def test_clone_action_hands_the_frame_to_tc(dp):
    lib = dp.lib
    session(dp, 1, [1])
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields(port=0xFFFFFFFF)], fwd=(lib.PF_FWD_PORT, 1), root=True)
    dp.entry(1, dp.fields(port=0), flags=lib.PF_ACT_CLONE, session=1)
    action, verdict, out = dp.run(0, FRAME)
    assert (action, verdict.kind, verdict.out_port) == (XDP_PASS, lib.PF_VERDICT_REPLICATE, 1)
    # BPF_PROG_RUN returns the metadata area too: the pf_handoff TC reads, then the frame untouched
    magic, sid, path, flags, out_port, in_port = struct.unpack("<IHBBII", out[:16])
    assert (magic, sid, path, flags, out_port, in_port) == (0x70664331, 1, lib.PF_PATH_CLONE_I2E, 0, 1, 0)
    assert out[16:] == FRAME
    # no clone: the same entry redirects in XDP
    dp.entry(1, dp.fields(port=0))
    action, verdict, _ = dp.run(0, FRAME)
    assert (action, verdict.kind) == (XDP_REDIRECT, lib.PF_VERDICT_TX)
