"""Frames for `pyflow trace` from a field list: what scapy decodes from them, with valid checksums;
pcap/pcapng reading; one-line errors for bad descriptions."""
from __future__ import annotations

import struct

import pytest
from scapy.all import ICMP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, IPv6, Raw, raw, wrpcap
from scapy.contrib.mpls import MPLS

from pyflow.errors import UsageError
from pyflow.frames import build_frame, frame_from_hex, frame_from_pcap, read_pcap


def checksums_ok(frame: bytes) -> bool:
    pkt = Ether(frame)
    again = Ether(frame)
    for layer in (IP, TCP, UDP, ICMP):
        if layer in again:
            del again[layer].chksum
    return raw(Ether(raw(again))) == raw(pkt)


def test_udp_over_vlan_qinq():
    f = build_frame("eth.dst=02:aa:00:00:00:01 vlan.id=10 vlan.inner=20 ipv4.src=10.0.0.1 ipv4.dst=10.0.0.2 "
                    "ipv4.ttl=7 ipv4.dscp=46 l4.sport=1000 l4.dport=53")
    p = Ether(f)
    assert p.dst == "02:aa:00:00:00:01" and p[Dot1AD].vlan == 10 and p[Dot1Q].vlan == 20
    assert (p[IP].src, p[IP].dst, p[IP].ttl, p[IP].tos >> 2) == ("10.0.0.1", "10.0.0.2", 7, 46)
    assert (p[UDP].sport, p[UDP].dport) == (1000, 53)
    assert checksums_ok(f)


def test_tcp_icmp_ipv6_mpls():
    t = Ether(build_frame("ipv4.dst=1.2.3.4 tcp.flags=0x12 l4.dport=80"))
    assert t[TCP].flags == 0x12 and t[TCP].dport == 80
    i = Ether(build_frame("ipv4.dst=1.2.3.4 icmp.type=0"))
    assert i[ICMP].type == 0
    v6 = Ether(build_frame("ipv6.src=2001:db8::5 ipv6.dst=2001:db8::6 l4.dport=5353"))
    assert v6[IPv6].dst == "2001:db8::6" and v6[UDP].dport == 5353
    m = Ether(build_frame("mpls.label=100/200 ipv4.dst=10.0.0.1 mpls.tc=3"))
    assert (m[MPLS].label, m[MPLS].cos, m[MPLS].s) == (100, 3, 0)
    assert (m[MPLS].payload.label, m[MPLS].payload.s) == (200, 1)
    for f in (t, i, v6):
        assert checksums_ok(raw(f))


def test_mpegts_and_length():
    f = build_frame("ipv4.dst=10.0.0.2 l4.dport=1234 mpegts=psi len=1400")
    assert len(f) == 1400
    payload = bytes(Ether(f)[UDP].payload)
    assert payload[0] == 0x47 and payload[1] & 0x1F == 0 and payload[2] == 0   # a PAT first


@pytest.mark.parametrize("desc,needle", [
    ("ipv4.dst=10.0.0.300", "ipv4.dst=10.0.0.300"),
    ("ipv9.dst=1", "unknown field 'ipv9.dst'"),
    ("ipv4.dst", "expected FIELD=VALUE"),
    ("ipv4.dst=1.1.1.1 ipv6.dst=::1", "both ipv4"),
    ("meta.port=1", "unknown field 'meta.port'"),
    ("mpegts=sideways", "mpegts='sideways'"),
    ("ipv4.dst=1.1.1.1 len=20", "len=20"),
    ("", "empty field list"),
])
def test_bad_descriptions(desc, needle):
    with pytest.raises(UsageError) as e:
        build_frame(desc)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_hex_and_pcap(tmp_path):
    frames = [raw(Ether() / IP(dst="10.0.0.9") / UDP(dport=i) / Raw(b"x" * i)) for i in range(1, 4)]
    assert frame_from_hex(frames[0].hex()) == frames[0]
    assert frame_from_hex(" ".join(f"{b:02x}" for b in frames[1])) == frames[1]
    with pytest.raises(UsageError, match="at least an Ethernet header"):
        frame_from_hex("0011")
    path = str(tmp_path / "f.pcap")
    wrpcap(path, [Ether(f) for f in frames])
    assert read_pcap(path) == frames
    assert frame_from_pcap(path, 2) == frames[2]
    with pytest.raises(UsageError, match="holds 3 frame"):
        frame_from_pcap(path, 3)
    # a minimal pcapng: SHB, IDB, one EPB
    epb_data = frames[0] + bytes(-len(frames[0]) % 4)
    ng = (struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28) +
          struct.pack("<IIHHII", 1, 20, 1, 0, 65535, 20) +
          struct.pack("<IIIIIII", 6, 32 + len(epb_data), 0, 0, 0, len(frames[0]), len(frames[0])) + epb_data +
          struct.pack("<I", 32 + len(epb_data)))
    (tmp_path / "f.pcapng").write_bytes(ng)
    assert read_pcap(str(tmp_path / "f.pcapng")) == [frames[0]]
    (tmp_path / "junk").write_bytes(b"nope" * 10)
    with pytest.raises(UsageError, match="not a pcap"):
        read_pcap(str(tmp_path / "junk"))
