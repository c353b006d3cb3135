"""DSCP -> MPLS traffic class (seed 004) through the XDP program: labels pushed with
PF_ACT_MPLS_TC_DSCP carry the instance's mapping of the frame's DSCP, an unmapped DSCP its class
selector, and labels pushed without the flag keep their configured TC bits."""
from __future__ import annotations

from scapy.all import IP, UDP, Ether, IPv6, raw
from scapy.contrib.mpls import MPLS

from .test_datapath import XDP_REDIRECT, eth


def _labels(out: bytes):
    pkt = Ether(out)
    stack = []
    layer = pkt[MPLS]
    while isinstance(layer, MPLS):
        stack.append((layer.label, layer.cos))
        layer = layer.payload
    return stack


def test_tc_from_dscp_map_and_class_selector(dp):
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields(ip_dscp=0xFF)], fwd=(lib.PF_FWD_PORT, 1),
            fwd_miss=(lib.PF_FWD_DROP, 0), root=True)
    for dscp in (46, 34, 0, 18):
        dp.entry(1, dp.fields(ip_dscp=dscp), flags=lib.PF_ACT_PUSH_MPLS | lib.PF_ACT_MPLS_TC_DSCP,
                 mpls_count=2, mpls_labels=[100, 200 | (3 << 20)], mpls_ttl=64)
    table = dp.ffi.new("uint8_t[64]", [0xFF] * 64)
    table[46], table[34] = 5, 1
    dp.call(lib.pf_dscp_tc_set, dp.inst, table)
    for dscp, tc in ((46, 5), (34, 1), (0, 0), (18, 2)):
        ret, v, out = dp.run(0, raw(eth() / IP(tos=dscp << 2) / UDP()))
        assert ret == XDP_REDIRECT, dscp
        assert _labels(out) == [(100, tc), (200, tc)], dscp
    # IPv6: the traffic class's DSCP
    dp.entry(1, dp.fields(ip_dscp=10), flags=lib.PF_ACT_PUSH_MPLS | lib.PF_ACT_MPLS_TC_DSCP, mpls_count=1,
             mpls_labels=[300])
    ret, v, out = dp.run(0, raw(eth() / IPv6(tc=10 << 2) / UDP()))
    assert _labels(out) == [(300, 1)]


def test_without_the_flag_labels_keep_their_tc(dp):
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields(ip_proto=0xFF)], fwd=(lib.PF_FWD_PORT, 1),
            fwd_miss=(lib.PF_FWD_DROP, 0), root=True)
    dp.entry(1, dp.fields(ip_proto=17), flags=lib.PF_ACT_PUSH_MPLS, mpls_count=1, mpls_labels=[400 | (6 << 20)])
    table = dp.ffi.new("uint8_t[64]", [1] * 64)
    dp.call(lib.pf_dscp_tc_set, dp.inst, table)
    ret, v, out = dp.run(0, raw(eth() / IP(tos=46 << 2) / UDP()))
    assert _labels(out) == [(400, 6)]


def test_bad_map_is_refused(dp):
    import pytest

    from pyflow.errors import NativeError

    table = dp.ffi.new("uint8_t[64]", [0xFF] * 64)
    table[3] = 9
    with pytest.raises(NativeError, match="dscp 3: traffic class 9"):
        dp.call(dp.lib.pf_dscp_tc_set, dp.inst, table)
