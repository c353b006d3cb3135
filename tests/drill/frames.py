"""Fuzz frames and a reference model of the parser and of the drill pipeline, in plain Python.

The model follows bpf/include/pyflow/packet.h (pf_parse_ex) and the pipe walk of the datapath: it is
written from their rules, not from their code paths, so a disagreement is a bug in one of the two.
"""
from __future__ import annotations

import random
import struct

from pyflow.lab import checksum

ETH_IPV4, ETH_IPV6, ETH_VLAN, ETH_QINQ, ETH_MPLS, ETH_MPLS_MC, ETH_ARP = (
    0x0800, 0x86DD, 0x8100, 0x88A8, 0x8847, 0x8848, 0x0806)
MPEGTS_NONE, MPEGTS_REF, MPEGTS_NONREF, MPEGTS_PSI = 0, 1, 2, 3

# verdicts (struct pf_verdict kind / drop_reason)
TX, DROP, PASS = 0, 1, 3
MALFORMED, ACTION, ACTION_FAIL = 0, 1, 6


# ---- parser -----------------------------------------------------------------

def mpegts_is_psi(frame: bytes, ts: int) -> bool:
    """A TS packet carrying program-specific information: PAT/CAT by PID, or a PMT section (table_id 2)
    starting in it (payload_unit_start_indicator, payload present, pointer_field)."""
    n = len(frame)
    if (((frame[ts + 1] & 0x1F) << 8) | frame[ts + 2]) <= 1:
        return True
    if not (frame[ts + 1] & 0x40) or not (frame[ts + 3] & 0x10):
        return False
    off = 4 + (1 + frame[ts + 4] if frame[ts + 3] & 0x20 else 0)
    if off > 186 or ts + off + 2 > n or frame[ts + off] > 186:
        return False
    off += 1 + frame[ts + off]
    if off > 187 or ts + off + 1 > n:
        return False
    return frame[ts + off] == 0x02


def mpegts_class(frame: bytes, off: int) -> int:
    """PSI wins over everything; else reference when any TS packet's adaptation field has
    random_access_indicator; else non-reference; none unless the payload starts with the sync byte."""
    n = len(frame)
    if off + 1 > n or frame[off] != 0x47:
        return MPEGTS_NONE
    cls = MPEGTS_NONREF
    for i in range(7):
        ts = off + i * 188
        if ts + 6 > n or frame[ts] != 0x47:
            break
        if mpegts_is_psi(frame, ts):
            return MPEGTS_PSI
        if (frame[ts + 3] & 0x20) and frame[ts + 4] > 0 and (frame[ts + 5] & 0x40):
            cls = MPEGTS_REF
    return cls


def parse(frame: bytes):
    """None when the parser rejects the frame, else a dict of the fields the drill pipeline uses."""
    n = len(frame)
    if n < 14:
        return None
    f = {"eth_type": 0, "vlan": 0, "proto": 0, "dport": 0, "label": 0, "mpegts": MPEGTS_NONE,
         "l3": 0, "l3_off": 0, "ttl": 0}
    etype = (frame[12] << 8) | frame[13]
    off = 14
    for i in range(2):
        if etype not in (ETH_VLAN, ETH_QINQ):
            break
        if off + 4 > n:
            return None
        if i == 0:
            f["vlan"] = ((frame[off] << 8) | frame[off + 1]) & 0xFFF
        etype = (frame[off + 2] << 8) | frame[off + 3]
        off += 4
    f["eth_type"] = etype
    if etype in (ETH_MPLS, ETH_MPLS_MC):
        bos = False
        for i in range(4):
            if off + 4 > n:
                return None
            v = struct.unpack_from("!I", frame, off)[0]
            if i == 0:
                f["label"] = v >> 12
            off += 4
            if v & 0x100:
                bos = True
                break
        if not bos:
            return f
        if off + 1 > n:
            return None
        if frame[off] >> 4 == 4:
            return ipv4(frame, off, f)
        if frame[off] >> 4 == 6:
            return ipv6(frame, off, f)
        return f
    if etype == ETH_IPV4:
        return ipv4(frame, off, f)
    if etype == ETH_IPV6:
        return ipv6(frame, off, f)
    return f


def ipv4(frame, off, f):
    n = len(frame)
    if off + 20 > n:
        return None
    ihl = (frame[off] & 0xF) * 4
    tot = (frame[off + 2] << 8) | frame[off + 3]
    if frame[off] >> 4 != 4 or ihl < 20 or tot < ihl or off + ihl > n or off + tot > n:
        return None
    f.update(l3=4, l3_off=off, proto=frame[off + 9], ttl=frame[off + 8])
    if ((frame[off + 6] << 8) | frame[off + 7]) & 0x1FFF:
        return f                      # a later fragment: no L4 header
    return l4(frame, off + ihl, f)


def ipv6(frame, off, f):
    n = len(frame)
    if off + 40 > n or frame[off] >> 4 != 6:
        return None
    if off + 40 + ((frame[off + 4] << 8) | frame[off + 5]) > n:
        return None
    f.update(l3=6, l3_off=off, proto=frame[off + 6], ttl=frame[off + 7])
    return l4(frame, off + 40, f)     # extension headers are not walked: ip_proto is the first next header


def l4(frame, off, f):
    n, proto = len(frame), f["proto"]
    if proto == 6:
        if off + 20 > n:
            return None
        hlen = (frame[off + 12] >> 4) * 4
        if hlen < 20 or off + hlen > n:
            return None
        f["dport"] = (frame[off + 2] << 8) | frame[off + 3]
    elif proto == 17:
        if off + 8 > n:
            return None
        f["dport"] = (frame[off + 2] << 8) | frame[off + 3]
        f["mpegts"] = mpegts_class(frame, off + 8) if off + 8 <= 255 + 60 else MPEGTS_NONE
    elif proto in (1, 58):
        if off + 4 > n:
            return None
        f["dport"] = frame[off + 1]  # the ICMP code
    return f


# ---- the drill pipeline -------------------------------------------------------
# pipe 1 (root) on (eth.type, vlan.id); pipe 2 on (ipv4.proto, l4.dport); pipe 3 on ipv6.next;
# pipe 4 on mpls.label; pipe 5 on mpegts.frame. ("port", 1, dec_ttl) | ("pipe", n) | ("drop",) | ("kernel",)

PIPES = {
    1: ({(ETH_IPV4, 0): ("pipe", 2), (ETH_IPV4, 5): ("pipe", 2), (ETH_IPV6, 0): ("pipe", 3),
         (ETH_MPLS, 0): ("pipe", 4), (ETH_IPV4, 7): ("drop",)}, ("kernel",)),
    2: ({(17, 53): ("port", 1, False), (6, 80): ("port", 1, True), (17, 1234): ("pipe", 5),
         (1, 0): ("port", 1, False)}, ("drop",)),
    3: ({(58,): ("port", 1, False), (6,): ("port", 1, True)}, ("kernel",)),
    4: ({(16,): ("port", 1, False), (17,): ("pipe", 2)}, ("drop",)),
    5: ({(MPEGTS_REF,): ("port", 1, False), (MPEGTS_PSI,): ("port", 1, False), (MPEGTS_NONREF,): ("drop",),
         (MPEGTS_NONE,): ("kernel",)}, ("drop",)),
}


def key_of(pipe: int, f: dict) -> tuple:
    return {1: (f["eth_type"], f["vlan"]), 2: (f["proto"], f["dport"]), 3: (f["proto"],), 4: (f["label"],),
            5: (f["mpegts"],)}[pipe]


def fate(frame: bytes):
    """(verdict kind, out port or drop reason) of one frame, and its TTL offset if the frame's TTL was
    decremented on the way out."""
    f = parse(frame)
    if f is None:
        return (DROP, MALFORMED), None
    pipe = 1
    for _ in range(8):
        entries, miss = PIPES[pipe]
        fwd = entries.get(key_of(pipe, f), miss)
        if fwd[0] == "pipe":
            pipe = fwd[1]
            continue
        if fwd[0] == "drop":
            return (DROP, ACTION), None
        if fwd[0] == "kernel":
            return (PASS, 0), None
        if fwd[2]:
            if f["ttl"] <= 1:
                return (DROP, ACTION_FAIL), None
            return (TX, fwd[1]), f["l3_off"] + (8 if f["l3"] == 4 else 7)
        return (TX, fwd[1]), None
    raise AssertionError("the drill pipeline has no loops")


def csum_replace16(check: int, old: int, new: int) -> int:
    s = ((~check) & 0xFFFF) + ((~old) & 0xFFFF) + new
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def after_dec_ttl(frame: bytes, ttl_off: int, l3: int) -> bytes:
    out = bytearray(frame)
    out[ttl_off] -= 1
    if l3 == 4:
        ip = ttl_off - 8
        old = (frame[ttl_off] << 8) | frame[ttl_off + 1]
        new = (out[ttl_off] << 8) | out[ttl_off + 1]
        check = (frame[ip + 10] << 8) | frame[ip + 11]
        struct.pack_into("!H", out, ip + 10, csum_replace16(check, old, new))
    return bytes(out)


# ---- frames ---------------------------------------------------------------------

def eth(etype: int, body: bytes, tags=()) -> bytes:
    hdr = bytes.fromhex("02000000000202000000000104")[:12]
    for tpid, vid in tags:
        hdr += struct.pack("!HH", tpid, vid)
    return hdr + struct.pack("!H", etype) + body


def ip4(proto: int, l4b: bytes, ttl: int = 64, opts: bytes = b"", frag: int = 0) -> bytes:
    ihl = 5 + len(opts) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(l4b), 1, frag, ttl, proto, 0,
                    bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + opts
    h = h[:10] + struct.pack("!H", checksum(h)) + h[12:]
    return h + l4b


def ip6(nxt: int, l4b: bytes, hop: int = 64) -> bytes:
    return struct.pack("!IHBB", 0x60000000, len(l4b), nxt, hop) + bytes(15) + b"\1" + bytes(15) + b"\2" + l4b


def udp(dport: int, payload: bytes = b"x" * 12) -> bytes:
    return struct.pack("!HHHH", 5000, dport, 8 + len(payload), 0) + payload


def tcp(dport: int, doff: int = 5) -> bytes:
    return struct.pack("!HHIIBBHHH", 5000, dport, 1, 0, doff << 4, 0x18, 1024, 0, 0) + bytes((doff - 5) * 4) + b"data"


def ts_packet(rai: bool, sync: int = 0x47) -> bytes:
    # PID 0x100, adaptation_field_control 3 (field + payload), field length 7, random_access_indicator in its flags
    return bytes([sync, 0x01, 0x00, 0x30, 7, 0x40 if rai else 0x00]) + bytes(182)


def ts_section(pid: int, table_id: int, pointer: int = 0) -> bytes:
    # payload_unit_start_indicator, payload only, pointer_field, then the section's table_id
    body = bytes([pointer]) + bytes(pointer) + bytes([table_id])
    return bytes([0x47, 0x40 | pid >> 8, pid & 0xFF, 0x10]) + body + bytes(184 - len(body))


def mpls(labels, body: bytes) -> bytes:
    out = b""
    for i, label in enumerate(labels):
        out += struct.pack("!I", (label << 12) | (0x100 if i == len(labels) - 1 else 0) | 64)
    return out + body


def base_frames() -> list[bytes]:
    icmp = bytes([8, 0, 0, 0, 0, 1, 0, 1])
    return [
        eth(ETH_IPV4, ip4(17, udp(53))),
        eth(ETH_IPV4, ip4(6, tcp(80), ttl=9)),
        eth(ETH_IPV4, ip4(6, tcp(80), ttl=1)),
        eth(ETH_IPV4, ip4(6, tcp(80, doff=8), ttl=2)),
        eth(ETH_IPV4, ip4(17, udp(53), opts=bytes([1, 1, 1, 0]) * 2)),
        eth(ETH_IPV4, ip4(17, udp(53), frag=0x2000 | 0)),
        eth(ETH_IPV4, ip4(17, udp(53), frag=8)),
        eth(ETH_IPV4, ip4(1, icmp)),
        eth(ETH_IPV4, ip4(17, udp(1234, ts_packet(True) + ts_packet(False)))),
        eth(ETH_IPV4, ip4(17, udp(1234, ts_packet(False) * 3))),
        eth(ETH_IPV4, ip4(17, udp(1234, ts_packet(False) + ts_packet(True, sync=0x46)))),
        eth(ETH_IPV4, ip4(17, udp(1234, ts_packet(True, sync=0x46)))),
        eth(ETH_IPV4, ip4(17, udp(1234, b"\x47"))),
        eth(ETH_IPV4, ip4(17, udp(1234, ts_packet(False) + ts_section(0, 0)))),            # PAT
        eth(ETH_IPV4, ip4(17, udp(1234, ts_packet(True) + ts_section(0x1000, 2, 3)))),     # PMT section
        eth(ETH_IPV4, ip4(17, udp(1234, ts_section(0x101, 0, 0) + ts_packet(True)))),      # PES start, not PSI
        eth(ETH_IPV4, ip4(17, udp(53)), tags=[(ETH_VLAN, 5)]),
        eth(ETH_IPV4, ip4(6, tcp(80)), tags=[(ETH_QINQ, 5), (ETH_VLAN, 100)]),
        eth(ETH_IPV4, ip4(17, udp(53)), tags=[(ETH_VLAN, 7)]),
        eth(ETH_IPV4, ip4(17, udp(53)), tags=[(ETH_VLAN, 5), (ETH_VLAN, 6), (ETH_VLAN, 7)]),
        eth(ETH_MPLS, mpls([16, 99], ip4(17, udp(53)))),
        eth(ETH_MPLS, mpls([17], ip4(17, udp(53)))),
        eth(ETH_MPLS, mpls([17, 1, 2, 3], ip4(6, tcp(80), ttl=1))),
        eth(ETH_MPLS, mpls([17, 1, 2, 3, 4], ip4(17, udp(53)))),
        eth(ETH_MPLS, mpls([16], ip6(58, icmp))),
        eth(ETH_MPLS, mpls([16], b"\x00" * 20)),
        eth(ETH_IPV6, ip6(58, icmp)),
        eth(ETH_IPV6, ip6(6, tcp(80), hop=1)),
        eth(ETH_IPV6, ip6(6, tcp(80), hop=3)),
        eth(ETH_IPV6, ip6(0, bytes([58, 0, 1, 4, 0, 0, 0, 0]) + icmp)),       # hop-by-hop, then ICMPv6
        eth(ETH_IPV6, ip6(43, bytes([6, 0, 0, 0, 0, 0, 0, 0]) + tcp(80))),    # routing header, then TCP
        eth(ETH_IPV6, ip6(44, bytes([17, 0, 0, 1, 0, 0, 0, 1]) + udp(53))),   # fragment header
        eth(ETH_ARP, bytes(28)),
        eth(0x88CC, bytes(40)),
    ]


class Fuzzer:
    """Random and mutated frames from the bases, reproducible from a seed."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.bases = base_frames()

    def frame(self) -> bytes:
        rng = self.rng
        base = rng.choice(self.bases)
        kind = rng.randrange(10)
        if kind == 0:
            return base
        if kind == 1:                                        # truncated anywhere after the Ethernet header
            return base[:rng.randrange(14, len(base) + 1)]
        if kind <= 4:                                        # bytes of the headers changed
            b = bytearray(base)
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(12, min(len(b), 90))] = rng.randrange(256)
            return bytes(b)
        if kind == 5:                                        # IHL, total length or IPv6 payload length
            b = bytearray(base)
            off = 14 + 4 * sum(1 for i in range(2) if b[12 + 4 * i:14 + 4 * i] in (b"\x81\x00", b"\x88\xa8"))
            if off + 6 <= len(b):
                which = rng.randrange(3)
                if which == 0:
                    b[off] = (b[off] & 0xF0) | rng.randrange(16)
                elif which == 1:
                    struct.pack_into("!H", b, off + 2, rng.randrange(65536) if rng.random() < 0.5
                                     else max(0, len(b) - off + rng.randint(-8, 8)))
                else:
                    struct.pack_into("!H", b, off + 4, rng.randrange(len(b)))
            return bytes(b)
        if kind == 6:                                        # VLAN tags pushed in front
            tags = b"".join(struct.pack("!HH", rng.choice([ETH_VLAN, ETH_QINQ]), rng.choice([0, 5, 7, 4095]))
                            for _ in range(rng.randint(1, 3)))
            return base[:12] + tags + base[12:]
        if kind == 7:                                        # an MPLS stack of random depth and BOS bits
            labels = b"".join(struct.pack("!I", (rng.choice([16, 17, 3, 1 << 19]) << 12) |
                                          (0x100 if rng.random() < 0.3 else 0) | 64)
                              for _ in range(rng.randint(1, 5)))
            return base[:12] + b"\x88\x47" + labels + base[14:]
        if kind == 8:                                        # bytes past the headers: payloads, MPEG-TS
            b = bytearray(base + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))))
            if len(b) > 60:
                b[rng.randrange(40, len(b))] = rng.choice([0x47, 0x46, 0x40, 0x20])
            return bytes(b)
        return bytes(rng.randrange(256) for _ in range(rng.randint(14, 100)))   # noise
