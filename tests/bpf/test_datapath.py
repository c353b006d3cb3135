"""XDP datapath through BPF_PROG_RUN: every parser path, every action, every
pipe type. Frames are built with scapy; rewritten frames are checked header by
header and their checksums must equal what scapy recomputes."""
from __future__ import annotations

import socket
import struct

import pytest
from scapy.all import (ARP, ICMP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, ICMPv6EchoRequest, IPOption_RR, IPv6,
                       Raw, raw)
from scapy.contrib.mpls import MPLS

XDP_DROP, XDP_PASS, XDP_REDIRECT = 1, 2, 4

SRC_MAC, DST_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"


def v4(addr: str) -> int:
    """IPv4 address as the u32 whose memory holds it in network order."""
    return struct.unpack("I", socket.inet_aton(addr))[0]


def v6(addr: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, addr)


def n16(x: int) -> int:
    return struct.unpack("H", struct.pack("!H", x))[0]


def mac(m: str) -> bytes:
    return bytes.fromhex(m.replace(":", ""))


def eth():
    return Ether(src=SRC_MAC, dst=DST_MAC)


def ts_payload(rai: bool) -> bytes:
    """Two MPEG-TS packets; the second has an adaptation field, with random_access_indicator if rai."""
    plain = bytes([0x47, 0x01, 0x00, 0x10]) + bytes(184)
    adapt = bytes([0x47, 0x01, 0x00, 0x30, 0x07, 0x40 if rai else 0x00]) + bytes(182)
    return plain + adapt


def rebuilt(frame: bytes) -> bytes:
    """The frame with every checksum recomputed by scapy."""
    pkt = Ether(frame)
    for layer in (IP, TCP, UDP, ICMP):
        if layer in pkt and layer is not UDP or (layer is UDP and UDP in pkt and pkt[UDP].chksum != 0):
            if layer in pkt:
                del pkt[layer].chksum
    for layer in pkt.layers():
        if layer.__name__.startswith("ICMPv6") and hasattr(pkt[layer], "cksum"):
            del pkt[layer].cksum
    return raw(Ether(raw(pkt)))


FIELD_ALL = {"ipv4_src": 0xFFFFFFFF, "ipv4_dst": 0xFFFFFFFF, "ip_proto": 0xFF, "ip_ttl": 0xFF, "ip_dscp": 0xFF,
             "l4_sport": 0xFFFF, "l4_dport": 0xFFFF, "tcp_flags": 0xFF, "eth_type": 0xFFFF, "vlan_id": 0xFFFF,
             "vlan_inner": 0xFFFF, "mpls_label": 0xFFFFFFFF, "mpegts_frame": 0xFF, "ipv6_src": b"\xff" * 16,
             "ipv6_dst": b"\xff" * 16, "eth_src": b"\xff" * 6, "eth_dst": b"\xff" * 6, "port": 0xFFFFFFFF,
             "packet_path": 0xFF}

_next_pipe = iter(range(1, 10_000))


def expect_fields(dp, frame: bytes, **expected):
    """Program an exact pipe on exactly these fields; the frame must hit it (and miss when one differs)."""
    lib = dp.lib
    pipe = next(_next_pipe)
    mask = dp.fields(**{k: FIELD_ALL[k] for k in expected})
    dp.pipe(pipe, lib.PF_PIPE_BASIC, [mask], fwd=(lib.PF_FWD_PORT, 1), fwd_miss=(lib.PF_FWD_DROP, 0), root=True)
    eid = dp.entry(pipe, dp.fields(**expected))
    ret, v, _ = dp.run(0, frame)
    assert (ret, v.kind, v.out_port, v.entry_id) == (XDP_REDIRECT, lib.PF_VERDICT_TX, 1, eid), \
        f"parsed fields differ from {expected}"
    return eid


PARSE_CASES = {
    "ipv4_tcp": (eth() / IP(src="10.0.0.1", dst="10.0.0.2", ttl=33, tos=0xb8) / TCP(sport=1234, dport=80, flags="SA"),
                 dict(ipv4_src=v4("10.0.0.1"), ipv4_dst=v4("10.0.0.2"), ip_proto=6, ip_ttl=33, ip_dscp=46,
                      l4_sport=n16(1234), l4_dport=n16(80), tcp_flags=0x12, eth_type=n16(0x0800),
                      eth_src=mac(SRC_MAC), eth_dst=mac(DST_MAC))),
    "vlan": (eth() / Dot1Q(vlan=100) / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=5, dport=6),
             dict(vlan_id=100, vlan_inner=0, eth_type=n16(0x0800), ipv4_dst=v4("2.2.2.2"), l4_dport=n16(6))),
    "qinq": (eth() / Dot1AD(vlan=10) / Dot1Q(vlan=20) / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=5, dport=7),
             dict(vlan_id=10, vlan_inner=20, eth_type=n16(0x0800), l4_dport=n16(7))),
    "mpls_stack": (eth() / MPLS(label=1000, s=0, ttl=9) / MPLS(label=2000, s=0) / MPLS(label=3000, s=1) /
                   IP(src="3.3.3.3", dst="4.4.4.4") / TCP(sport=9, dport=10),
                   dict(mpls_label=1000, eth_type=n16(0x8847), ipv4_src=v4("3.3.3.3"), l4_sport=n16(9))),
    "mpls_ipv6": (eth() / MPLS(label=77, s=1) / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2),
                  dict(mpls_label=77, ipv6_dst=v6("2001:db8::2"), ip_proto=17, l4_dport=n16(2))),
    "ipv4_options": (eth() / IP(src="5.5.5.5", dst="6.6.6.6", options=[IPOption_RR(routers=["1.2.3.4"])]) /
                     TCP(sport=11, dport=12),
                     dict(ipv4_src=v4("5.5.5.5"), l4_sport=n16(11), l4_dport=n16(12), ip_proto=6)),
    "ipv6_udp": (eth() / IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=17, tc=0x28) / UDP(sport=53, dport=5353),
                 dict(ipv6_src=v6("2001:db8::1"), ipv6_dst=v6("2001:db8::2"), ip_proto=17, ip_ttl=17, ip_dscp=10,
                      l4_sport=n16(53), l4_dport=n16(5353), eth_type=n16(0x86DD))),
    "icmp": (eth() / IP(src="7.7.7.7", dst="8.8.8.8") / ICMP(type=8, code=0),
             dict(ip_proto=1, l4_sport=n16(8), l4_dport=n16(0))),
    "icmpv6": (eth() / IPv6(src="::1", dst="::2") / ICMPv6EchoRequest(),
               dict(ip_proto=58, l4_sport=n16(128), l4_dport=0)),
    "arp": (eth() / ARP(), dict(eth_type=n16(0x0806), ipv4_src=0, ip_proto=0)),
    "fragment": (eth() / IP(src="1.1.1.1", dst="2.2.2.2", frag=10, proto=17) / Raw(b"x" * 16),
                 dict(ip_proto=17, l4_sport=0, l4_dport=0)),
    "mpegts_reference": (eth() / IP() / UDP(sport=1, dport=1234) / Raw(ts_payload(True)),
                         dict(mpegts_frame=1, l4_dport=n16(1234))),
    "mpegts_non_reference": (eth() / IP() / UDP(sport=1, dport=1234) / Raw(ts_payload(False)),
                             dict(mpegts_frame=2)),
    "mpegts_none": (eth() / IP() / UDP(sport=1, dport=1234) / Raw(b"\x46" + bytes(187)), dict(mpegts_frame=0)),
}


@pytest.mark.parametrize("case", PARSE_CASES)
def test_parser(dp, case):
    pkt, expected = PARSE_CASES[case]
    expect_fields(dp, raw(pkt), port=0, packet_path=0, **expected)


def test_parser_miss_when_a_field_differs(dp):
    lib = dp.lib
    frame = raw(eth() / Dot1Q(vlan=100) / IP() / UDP())
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields(vlan_id=0xFFFF)], fwd=(lib.PF_FWD_PORT, 1),
            fwd_miss=(lib.PF_FWD_DROP, 0), root=True)
    dp.entry(1, dp.fields(vlan_id=101))
    ret, v, _ = dp.run(0, frame)
    assert (ret, v.kind, v.drop_reason) == (XDP_DROP, lib.PF_VERDICT_DROP, lib.PF_DROP_ACTION)
    assert dp.pipe_counters(1).misses == 1


TRUNCATED = {
    "ethertype_only": raw(eth() / Dot1Q(vlan=5))[:14],
    "vlan": raw(eth() / Dot1Q(vlan=5) / IP())[:16],
    "qinq_inner": raw(eth() / Dot1AD(vlan=5) / Dot1Q(vlan=6) / IP())[:20],
    "mpls": raw(eth() / MPLS(label=5, s=0) / MPLS(label=6, s=1) / IP())[:20],
    "ipv4_header": raw(eth() / IP() / TCP())[:14 + 19],
    "ipv4_options": raw(eth() / IP(options=[IPOption_RR(routers=["1.1.1.1"])]) / TCP())[:14 + 22],
    "ipv4_total_length": raw(eth() / IP(len=200) / UDP() / Raw(b"x" * 10)),
    "ipv4_bad_ihl": raw(eth() / IP(ihl=4) / UDP()),
    "ipv6_header": raw(eth() / IPv6() / UDP())[:14 + 39],
    "ipv6_payload_length": raw(eth() / IPv6(plen=100) / UDP()),
    "tcp": raw(eth() / IP(len=20 + 19) / TCP())[:14 + 20 + 19],
    "tcp_data_offset": raw(eth() / IP() / TCP(dataofs=15)),
    "udp": raw(eth() / IP(len=20 + 7) / UDP())[:14 + 20 + 7],
    "icmp": raw(eth() / IP(len=20 + 3, proto=1) / Raw(b"\x08\x00\x00"))[:14 + 23],
    "icmpv6": raw(eth() / IPv6(plen=3, nh=58) / Raw(b"\x80\x00\x00")),
}


@pytest.mark.parametrize("case", TRUNCATED)
def test_truncated_frames_are_dropped_as_malformed(dp, case):
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields()], fwd=(lib.PF_FWD_PORT, 1), fwd_miss=(lib.PF_FWD_PORT, 1), root=True)
    ret, v, _ = dp.run(0, TRUNCATED[case])
    assert (ret, v.kind, v.drop_reason) == (XDP_DROP, lib.PF_VERDICT_DROP, lib.PF_DROP_MALFORMED)
    c = dp.port_counters(0)
    assert (c.rx_packets, c.drops[lib.PF_DROP_MALFORMED], c.tx_packets) == (1, 1, 0)


# ---- actions ----

def apply(dp, frame: bytes, expect_ret=XDP_REDIRECT, **act) -> bytes:
    """One catch-all pipe whose only entry applies act; returns the frame that left."""
    lib = dp.lib
    pipe = next(_next_pipe)
    dp.pipe(pipe, lib.PF_PIPE_BASIC, [dp.fields()], fwd=(lib.PF_FWD_PORT, 1), fwd_miss=(lib.PF_FWD_DROP, 0),
            root=True)
    dp.entry(pipe, **act)
    ret, v, out = dp.run(0, frame)
    assert ret == expect_ret, (ret, v.kind, v.drop_reason)
    return out


def assert_checksums(out: bytes):
    assert out == rebuilt(out), "checksums differ from scapy's"


L4_VARIANTS = {
    "tcp": lambda: IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000, dport=2000) / Raw(b"payload!"),
    "udp": lambda: IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=2000) / Raw(b"payload!"),
    "icmp": lambda: IP(src="10.0.0.1", dst="10.0.0.2") / ICMP() / Raw(b"payload!"),
}


@pytest.mark.parametrize("l4", L4_VARIANTS)
def test_set_ipv4_addresses(dp, l4):
    lib = dp.lib
    out = apply(dp, raw(eth() / L4_VARIANTS[l4]()), flags=lib.PF_ACT_SET_IPV4_SRC | lib.PF_ACT_SET_IPV4_DST,
        ipv4_src=v4("192.168.1.1"), ipv4_dst=v4("172.16.5.9"))
    p = Ether(out)
    assert (p[IP].src, p[IP].dst) == ("192.168.1.1", "172.16.5.9")
    assert_checksums(out)


def test_udp_zero_checksum_stays_zero(dp):
    lib = dp.lib
    frame = bytearray(raw(eth() / IP() / UDP(sport=1, dport=2) / Raw(b"abc")))
    frame[14 + 20 + 6:14 + 20 + 8] = b"\x00\x00"
    out = apply(dp, bytes(frame), flags=lib.PF_ACT_SET_IPV4_DST | lib.PF_ACT_SET_L4_DPORT, ipv4_dst=v4("9.9.9.9"),
                l4_dport=n16(99))
    p = Ether(out)
    assert (p[IP].dst, p[UDP].dport, p[UDP].chksum) == ("9.9.9.9", 99, 0)
    assert_checksums(out)


@pytest.mark.parametrize("l4", ["tcp", "udp"])
def test_set_l4_ports(dp, l4):
    lib = dp.lib
    out = apply(dp, raw(eth() / L4_VARIANTS[l4]()), flags=lib.PF_ACT_SET_L4_SPORT | lib.PF_ACT_SET_L4_DPORT,
                l4_sport=n16(4321), l4_dport=n16(8765))
    p = Ether(out)
    layer = TCP if l4 == "tcp" else UDP
    assert (p[layer].sport, p[layer].dport) == (4321, 8765)
    assert_checksums(out)


@pytest.mark.parametrize("l4", ["tcp", "udp", "icmpv6"])
def test_set_ipv6_addresses(dp, l4):
    lib = dp.lib
    upper = {"tcp": TCP(sport=1, dport=2), "udp": UDP(sport=1, dport=2), "icmpv6": ICMPv6EchoRequest()}[l4]
    out = apply(dp, raw(eth() / IPv6(src="2001:db8::1", dst="2001:db8::2") / upper / Raw(b"data")),
                flags=lib.PF_ACT_SET_IPV6_SRC | lib.PF_ACT_SET_IPV6_DST, ipv6_src=v6("fd00::a"),
                ipv6_dst=v6("fd00:1:2:3:4:5:6:7"))
    p = Ether(out)
    assert (p[IPv6].src, p[IPv6].dst) == ("fd00::a", "fd00:1:2:3:4:5:6:7")
    assert_checksums(out)


def test_set_eth_and_dscp_and_dec_ttl_ipv4(dp):
    lib = dp.lib
    out = apply(dp, raw(eth() / IP(ttl=64, tos=0x03) / TCP()),
                flags=lib.PF_ACT_SET_ETH_SRC | lib.PF_ACT_SET_ETH_DST | lib.PF_ACT_SET_DSCP | lib.PF_ACT_DEC_TTL,
                eth_src=mac("0a:0b:0c:0d:0e:0f"), eth_dst=mac("01:02:03:04:05:06"), dscp=46)
    p = Ether(out)
    assert (p.src, p.dst) == ("0a:0b:0c:0d:0e:0f", "01:02:03:04:05:06")
    assert (p[IP].ttl, p[IP].tos) == (63, (46 << 2) | 0x03)
    assert_checksums(out)


def test_dscp_and_hop_limit_ipv6(dp):
    lib = dp.lib
    out = apply(dp, raw(eth() / IPv6(hlim=5, tc=0x01, fl=0x12345) / UDP()),
                flags=lib.PF_ACT_SET_DSCP | lib.PF_ACT_DEC_TTL, dscp=10)
    p = Ether(out)
    assert (p[IPv6].hlim, p[IPv6].tc, p[IPv6].fl) == (4, (10 << 2) | 0x01, 0x12345)
    assert_checksums(out)


def test_ttl_expiry_drops(dp):
    lib = dp.lib
    apply(dp, raw(eth() / IP(ttl=1) / UDP()), expect_ret=XDP_DROP, flags=lib.PF_ACT_DEC_TTL)
    assert dp.port_counters(0).drops[lib.PF_DROP_ACTION_FAIL] == 1


def test_push_vlan_then_qinq(dp):
    lib = dp.lib
    inner = IP(src="1.2.3.4", dst="5.6.7.8") / UDP(sport=3, dport=4) / Raw(b"x")
    out = apply(dp, raw(eth() / inner), flags=lib.PF_ACT_PUSH_VLAN, vlan_id=42)
    p = Ether(out)
    assert (p.type, p[Dot1Q].vlan, p[Dot1Q].type) == (0x8100, 42, 0x0800)
    assert raw(p[IP]) == raw(inner)
    out2 = apply(dp, out, flags=lib.PF_ACT_PUSH_VLAN, vlan_id=7)
    assert out2[12:14] == b"\x88\xa8" and struct.unpack("!H", out2[14:16])[0] == 7
    assert out2[16:18] == b"\x81\x00" and out2[:12] == out[:12] and out2[16:] == out[12:]


def test_pop_and_set_vlan(dp):
    lib = dp.lib
    frame = raw(eth() / Dot1AD(vlan=10, prio=5) / Dot1Q(vlan=20) / IP() / TCP())
    out = apply(dp, frame, flags=lib.PF_ACT_SET_VLAN, vlan_id=300)
    p = Ether(out)
    assert (p[Dot1AD].vlan, p[Dot1AD].prio, p[Dot1Q].vlan) == (300, 5, 20)
    out = apply(dp, frame, flags=lib.PF_ACT_POP_VLAN)
    p = Ether(out)
    assert (p.type, p[Dot1Q].vlan) == (0x8100, 20) and raw(p[IP]) == raw(Ether(frame)[IP])
    assert len(out) == len(frame) - 4


def test_push_mpls_stack_ttl_from_ip(dp):
    lib = dp.lib
    frame = raw(eth() / IP(ttl=50) / UDP(sport=1, dport=2) / Raw(b"zz"))
    out = apply(dp, frame, flags=lib.PF_ACT_DEC_TTL | lib.PF_ACT_PUSH_MPLS, mpls_count=2,
                mpls_labels=[100 | (5 << 20), 200])
    p = Ether(out)
    assert p.type == 0x8847
    top, bottom = p[MPLS], p[MPLS].payload
    assert (top.label, top.cos, top.s, top.ttl) == (100, 5, 0, 49)
    assert (bottom.label, bottom.s, bottom.ttl) == (200, 1, 49)
    assert raw(bottom.payload)[:1] == b"\x45" and out[:12] == frame[:12]
    assert_checksums(out)


def test_push_mpls_on_mpls_keeps_bottom_of_stack(dp):
    lib = dp.lib
    frame = raw(eth() / Dot1Q(vlan=9) / MPLS(label=300, s=1, ttl=7) / IP() / UDP())
    out = apply(dp, frame, flags=lib.PF_ACT_PUSH_MPLS, mpls_count=1, mpls_labels=[400], mpls_ttl=33)
    p = Ether(out)
    assert (p[Dot1Q].vlan, p[Dot1Q].type) == (9, 0x8847)
    assert (p[MPLS].label, p[MPLS].s, p[MPLS].ttl) == (400, 0, 33)
    assert (p[MPLS].payload.label, p[MPLS].payload.s) == (300, 1)


def test_pop_mpls(dp):
    lib = dp.lib
    ip = IP(src="1.1.1.1", dst="2.2.2.2") / TCP(sport=5, dport=6)
    frame = raw(eth() / MPLS(label=10, s=0) / MPLS(label=20, s=1) / ip)
    out = apply(dp, frame, flags=lib.PF_ACT_POP_MPLS, mpls_pop_count=1)
    p = Ether(out)
    assert (p.type, p[MPLS].label, p[MPLS].s) == (0x8847, 20, 1)
    out = apply(dp, frame, flags=lib.PF_ACT_POP_MPLS, mpls_pop_count=2)
    p = Ether(out)
    assert p.type == 0x0800 and raw(p[IP]) == raw(ip) and out[:12] == frame[:12]


def test_action_order_pop_set_dec_push(dp):
    lib = dp.lib
    frame = raw(eth() / Dot1Q(vlan=5) / IP(src="10.1.1.1", dst="10.2.2.2", ttl=9) / TCP(sport=1, dport=2))
    out = apply(dp, frame, flags=lib.PF_ACT_POP_VLAN | lib.PF_ACT_SET_IPV4_DST | lib.PF_ACT_DEC_TTL |
                lib.PF_ACT_PUSH_MPLS, ipv4_dst=v4("11.11.11.11"), mpls_count=1, mpls_labels=[16])
    p = Ether(out)
    assert p.type == 0x8847 and Dot1Q not in p
    assert (p[MPLS].label, p[MPLS].ttl, p[MPLS].s) == (16, 8, 1)
    inner = IP(raw(p[MPLS].payload))
    assert (inner.dst, inner.ttl) == ("11.11.11.11", 8)
    ref = IP(raw(inner))
    del ref.chksum
    del ref[TCP].chksum
    assert raw(IP(raw(ref))) == raw(inner)


def test_action_on_missing_header_drops(dp):
    lib = dp.lib
    apply(dp, raw(eth() / ARP()), expect_ret=XDP_DROP, flags=lib.PF_ACT_SET_IPV4_DST, ipv4_dst=1)
    apply(dp, raw(eth() / IP() / UDP()), expect_ret=XDP_DROP, flags=lib.PF_ACT_POP_VLAN)
    assert dp.port_counters(0).drops[lib.PF_DROP_ACTION_FAIL] == 2


def test_drop_percentage(dp):
    lib = dp.lib
    pipe = next(_next_pipe)
    dp.pipe(pipe, lib.PF_PIPE_BASIC, [dp.fields()], fwd=(lib.PF_FWD_PORT, 1), root=True)
    dp.entry(pipe, flags=lib.PF_ACT_DROP_PCT, drop_pct=30)
    frame = raw(eth() / IP() / UDP())
    dropped = sum(dp.run(0, frame)[0] == XDP_DROP for _ in range(400))
    assert 60 <= dropped <= 180
    assert dp.port_counters(0).drops[lib.PF_DROP_SAMPLED] == dropped


# ---- pipes ----

def test_control_pipe_priority_and_chaining_by_mark(dp):
    lib = dp.lib
    masks = [dp.fields(ipv4_dst=0xFFFFFFFF), dp.fields(ip_proto=0xFF)]
    dp.pipe(1, lib.PF_PIPE_CONTROL, masks, fwd=(lib.PF_FWD_PIPE, 2), fwd_miss=(lib.PF_FWD_DROP, 0), root=True)
    by_dst = dp.entry(1, dp.fields(ipv4_dst=v4("9.9.9.9")), mask_idx=0, priority=20,
                      flags=lib.PF_ACT_SET_MARK, mark=1)
    by_proto = dp.entry(1, dp.fields(ip_proto=17), mask_idx=1, priority=10, flags=lib.PF_ACT_SET_MARK, mark=2)
    dp.pipe(2, lib.PF_PIPE_BASIC, [dp.fields(mark=0xFFFFFFFF)], fwd_miss=(lib.PF_FWD_DROP, 0))
    dp.entry(2, dp.fields(mark=1), fwd=(lib.PF_FWD_PORT, 0))
    dp.entry(2, dp.fields(mark=2), fwd=(lib.PF_FWD_PORT, 1))
    _, v, _ = dp.run(0, raw(eth() / IP(dst="9.9.9.9") / UDP()))       # both match: priority 10 wins
    assert (v.kind, v.out_port, v.hops) == (lib.PF_VERDICT_TX, 1, 2)
    _, v, _ = dp.run(0, raw(eth() / IP(dst="9.9.9.9") / TCP()))       # only the dst entry
    assert (v.kind, v.out_port) == (lib.PF_VERDICT_TX, 0)
    assert dp.entry_counters(by_dst, by_proto) == [(1, 54), (1, 42)]
    assert (dp.pipe_counters(1).hits, dp.pipe_counters(2).hits) == (2, 2)


def test_lpm_longest_prefix(dp):
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_LPM, [], lpm_field=lib.PF_LPM_IPV4_DST, fwd_miss=(lib.PF_FWD_KERNEL, 0), root=True)
    dp.entry(1, dp.fields(ipv4_dst=v4("10.0.0.0")), prefixlen=8, fwd=(lib.PF_FWD_PORT, 0))
    dp.entry(1, dp.fields(ipv4_dst=v4("10.1.2.0")), prefixlen=24, fwd=(lib.PF_FWD_PORT, 1))
    outs = [dp.run(0, raw(eth() / IP(dst=d) / UDP()))[1].out_port for d in ("10.1.2.3", "10.1.3.3")]
    assert outs == [1, 0]
    ret, v, _ = dp.run(0, raw(eth() / IP(dst="11.0.0.1") / UDP()))
    assert (ret, v.kind) == (XDP_PASS, lib.PF_VERDICT_PASS)
    dp.pipe(2, lib.PF_PIPE_LPM, [], lpm_field=lib.PF_LPM_IPV6_SRC, fwd_miss=(lib.PF_FWD_DROP, 0), root=True)
    dp.entry(2, dp.fields(ipv6_src=v6("2001:db8::")), prefixlen=32, fwd=(lib.PF_FWD_PORT, 1))
    _, v, _ = dp.run(0, raw(eth() / IPv6(src="2001:db8:ffff::1") / UDP()))
    assert (v.kind, v.out_port) == (lib.PF_VERDICT_TX, 1)


def test_hash_pipe_weights_are_stable_per_flow(dp):
    lib = dp.lib
    # 70/30 as the compiler encodes it: 10 buckets, the members own [0, 7) and [7, 10)
    dp.pipe(1, lib.PF_PIPE_HASH, [], fwd_miss=(lib.PF_FWD_DROP, 0), root=True, nbuckets=10)
    dp.entry(1, fwd=(lib.PF_FWD_PORT, 0), mask_idx=0, prefixlen=7)
    second = dp.entry(1, fwd=(lib.PF_FWD_PORT, 1), mask_idx=7, prefixlen=3)
    frames = [raw(eth() / IP(src=f"10.0.{i // 250}.{i % 250}", dst="1.1.1.1") / UDP(sport=i, dport=53))
              for i in range(600)]
    first = [dp.run(0, f)[1].out_port for f in frames]
    assert first == [dp.run(0, f)[1].out_port for f in frames[:100]] + first[100:]
    share = first.count(0) / len(first)
    assert 0.6 < share < 0.8
    # a removed member's buckets select nothing: its flows take the pipe's miss, the others stay put
    dp.call(lib.pf_entry_del, dp.inst, second)
    after = [(v.kind, v.out_port) for v in (dp.run(0, f)[1] for f in frames)]
    assert [a for a, port in zip(after, first) if port == 0] == [(lib.PF_VERDICT_TX, 0)] * first.count(0)
    assert all(kind == lib.PF_VERDICT_DROP for (kind, _), port in zip(after, first) if port == 1)


def test_hash_pipe_bucket_range_out_of_the_table_is_refused(dp):
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_HASH, [], root=True, nbuckets=lib.PF_HASH_BUCKETS)
    with pytest.raises(Exception, match="buckets 120..129"):
        dp.entry(1, fwd=(lib.PF_FWD_PORT, 0), mask_idx=120, prefixlen=10)


def test_pipe_loop_hits_depth_limit(dp):
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields()], fwd=(lib.PF_FWD_PIPE, 1), fwd_miss=(lib.PF_FWD_PIPE, 1), root=True)
    ret, v, _ = dp.run(0, raw(eth() / IP() / UDP()))
    assert (ret, v.drop_reason, v.hops) == (XDP_DROP, lib.PF_DROP_DEPTH, lib.PF_MAX_PIPE_DEPTH)
    assert dp.pipe_counters(1).misses == lib.PF_MAX_PIPE_DEPTH


def test_miss_without_handler_and_kernel(dp):
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields(ip_proto=0xFF)], fwd_miss=(lib.PF_FWD_MISS, 0), root=True)
    dp.entry(1, dp.fields(ip_proto=6), fwd=(lib.PF_FWD_KERNEL, 0))
    ret, v, _ = dp.run(0, raw(eth() / IP() / UDP()))
    assert (ret, v.kind, v.drop_reason, v.last_pipe) == (XDP_DROP, lib.PF_VERDICT_DROP, lib.PF_DROP_NO_MISS, 1)
    ret, v, _ = dp.run(0, raw(eth() / IP() / TCP()))
    assert (ret, v.kind) == (XDP_PASS, lib.PF_VERDICT_PASS)


def test_port_egress_pipe_runs_after_the_ingress_choice(dp):
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields()], fwd=(lib.PF_FWD_PORT, 1), root=True)
    dp.entry(1)
    dp.pipe(5, lib.PF_PIPE_BASIC, [dp.fields(ip_proto=0xFF)], fwd=(lib.PF_FWD_DEFAULT, 0),
            fwd_miss=(lib.PF_FWD_DROP, 0), domain=1)
    dp.entry(5, dp.fields(ip_proto=17), flags=lib.PF_ACT_SET_DSCP, dscp=8)
    dp.port(1, dp.ifnames[1], egress_pipe=5)
    ret, v, out = dp.run(0, raw(eth() / IP() / UDP()))
    assert (ret, v.out_port, v.last_pipe, Ether(out)[IP].tos) == (XDP_REDIRECT, 1, 5, 8 << 2)
    assert_checksums(out)
    ret, v, _ = dp.run(0, raw(eth() / IP() / TCP()))
    assert (ret, v.drop_reason, v.last_pipe) == (XDP_DROP, lib.PF_DROP_ACTION, 5)


def test_entry_update_in_place_keeps_id_and_counters(dp):
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields(ipv4_dst=0xFFFFFFFF)], fwd_miss=(lib.PF_FWD_DROP, 0), root=True)
    other = dp.entry(1, dp.fields(ipv4_dst=v4("2.2.2.2")), fwd=(lib.PF_FWD_PORT, 1))
    eid = dp.entry(1, dp.fields(ipv4_dst=v4("1.1.1.1")), fwd=(lib.PF_FWD_PORT, 0))
    frame = raw(eth() / IP(dst="1.1.1.1") / UDP())
    assert dp.run(0, frame)[1].out_port == 0
    assert dp.entry(1, dp.fields(ipv4_dst=v4("1.1.1.1")), fwd=(lib.PF_FWD_PORT, 1)) == eid
    assert dp.run(0, frame)[1].out_port == 1
    assert dp.entry_counters(eid, other) == [(2, 2 * len(frame)), (0, 0)]
    dp.call(lib.pf_entry_del, dp.inst, eid)
    assert dp.run(0, frame)[1].drop_reason == lib.PF_DROP_ACTION
    # a reused id starts from zero
    again = dp.entry(1, dp.fields(ipv4_dst=v4("3.3.3.3")), fwd=(lib.PF_FWD_PORT, 1))
    assert dp.entry_counters(again) == [(0, 0)]


def test_entry_list(dp):
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields(ipv4_dst=0xFFFFFFFF)], root=True)
    ids = {dp.entry(1, dp.fields(ipv4_dst=v4(f"1.1.1.{i}"), l4_dport=7), fwd=(lib.PF_FWD_PORT, 1))
           for i in range(5)}
    out = dp.ffi.new("struct pf_entry_info[]", 16)
    count = dp.ffi.new("uint32_t *")
    dp.call(lib.pf_entry_list, dp.inst, 1, out, 16, count)
    assert count[0] == 5
    assert {out[i].entry.id for i in range(5)} == ids
    assert all(out[i].match.l4_dport == 0 and out[i].pipe == 1 for i in range(5))   # the masked key


def test_bad_input_is_refused_with_a_clear_message(dp):
    from pyflow.errors import NativeError
    lib = dp.lib
    with pytest.raises(NativeError, match="interface 'pfe-nope' does not exist"):
        dp.port(2, "pfe-nope")
    with pytest.raises(NativeError, match="root pipe 77 is not defined"):
        dp.call(lib.pf_root_set, dp.inst, 77)
    with pytest.raises(NativeError, match="entry for pipe 9: the pipe is not defined"):
        dp.entry(9)
    dp.pipe(1, lib.PF_PIPE_LPM, [], lpm_field=lib.PF_LPM_IPV4_DST)
    with pytest.raises(NativeError, match="prefix length 33, at most 32"):
        dp.entry(1, prefixlen=33)
    with pytest.raises(NativeError, match="at least 14 bytes"):
        dp.run(0, b"\x00" * 13)
