"""Frames for `pyflow trace`: built from a field list, read from hex, or taken from a pcap/pcapng file.

A field list uses the pipe model's field names (`ipv4.dst=10.0.0.2 l4.dport=1234`), so what a
user matches on in a config is what they write here. Checksums are computed, so the frame is
what a host would really send. Bad input raises UsageError naming the token and what was expected.
"""
from __future__ import annotations

import ipaddress
import re
import struct

from .errors import UsageError
from .lab import checksum

DEFAULT_SRC, DEFAULT_DST = "02:00:00:00:00:01", "02:00:00:00:00:02"
ALIASES = {"udp.sport": "l4.sport", "udp.dport": "l4.dport", "tcp.sport": "l4.sport", "tcp.dport": "l4.dport",
           "ipv6.hlim": "ipv6.hop"}
EXTRA = {"mpls.tc": "0..7 (traffic class of every label given)", "mpls.ttl": "0..255",
         "icmp.type": "0..255", "icmp.code": "0..255", "payload": "hex bytes after the L4 header",
         "mpegts": "reference, non-reference, psi or none: 7 MPEG-TS packets of that class as UDP payload",
         "len": "pad the frame to this many bytes (60..9000)"}


def mpegts_payload(cls: str) -> bytes:
    """Seven 188-byte TS packets whose class pf_parse_mpegts() reports as cls."""
    def ts(pid, pusi, afc, body):
        head = bytes([0x47, (0x40 if pusi else 0) | (pid >> 8), pid & 0xFF, afc])
        pkt = head + body
        return pkt + b"\xff" * (188 - len(pkt))

    video = ts(0x100, False, 0x10, bytes(8))
    if cls == "reference":
        first = ts(0x100, True, 0x30, bytes([1, 0x40]) + b"\x00\x00\x01\xe0")
    elif cls == "psi":
        first = ts(0x000, True, 0x10, bytes([0, 0, 0xB0, 0x0D, 0, 1, 0xC1, 0, 0, 0, 1, 0xF0, 0]))
    elif cls == "non-reference":
        first = ts(0x100, True, 0x10, b"\x00\x00\x01\xe0")
    elif cls == "none":
        return b"\x46" + bytes(187)
    else:
        raise UsageError(f"packet: mpegts={cls!r}: expected reference, non-reference, psi or none")
    return first + video * 6


def _tokens(desc: str) -> list[tuple[str, str]]:
    out = []
    for tok in re.split(r"[\s,]+", desc.strip()):
        if not tok:
            continue
        if "=" not in tok:
            raise UsageError(f"packet: {tok!r}: expected FIELD=VALUE (e.g. ipv4.dst=10.0.0.2)")
        key, value = tok.split("=", 1)
        out.append((key.strip().lower(), value.strip()))
    if not out:
        raise UsageError("packet: empty field list (e.g. 'ipv4.src=10.0.0.1 ipv4.dst=10.0.0.2 l4.dport=80')")
    return out


def build_frame(desc: str, ports: dict[str, int] | None = None) -> bytes:
    """A frame from a field list such as 'eth.dst=02:00:00:00:00:02 vlan.id=10 ipv4.dst=10.0.0.2 l4.dport=53'."""
    from .config.fields import FIELDS, parse_scalar

    vals: dict[str, int] = {}
    labels: list[int] = []
    extra: dict[str, str] = {}
    for key, raw in _tokens(desc):
        key = ALIASES.get(key, key) or key
        if key in EXTRA:
            extra[key] = raw
            continue
        if key not in FIELDS or key.startswith("meta."):
            known = sorted(k for k in FIELDS if not k.startswith("meta.")) + sorted(EXTRA)
            from .config.errors_util import suggest
            raise UsageError(f"packet: unknown field {key!r}{suggest(key, known)} "
                             f"(meta.* is set by the ingress port, not the packet)")
        if key == "mpls.label":
            for part in raw.split("/"):
                try:
                    labels.append(parse_scalar(FIELDS[key], part))
                except ValueError as exc:
                    raise UsageError(f"packet: {key}={raw}: {exc}") from None
            continue
        try:
            vals[key] = parse_scalar(FIELDS[key], raw)
        except ValueError as exc:
            raise UsageError(f"packet: {key}={raw}: {exc}") from None

    def num(key, top):
        raw = extra.get(key)
        if raw is None:
            return None
        if not re.fullmatch(r"0[xX][0-9a-fA-F]+|\d+", raw) or not 0 <= int(raw, 0) <= top:
            raise UsageError(f"packet: {key}={raw}: expected {EXTRA[key]}")
        return int(raw, 0)

    v6 = any(k.startswith("ipv6.") for k in vals)
    v4 = any(k.startswith("ipv4.") for k in vals)
    if v4 and v6:
        raise UsageError("packet: both ipv4.* and ipv6.* fields given; a frame has one IP header")
    l4_keys = {"l4.sport", "l4.dport", "tcp.flags"}
    proto = vals.get("ipv6.next", vals.get("ipv4.proto"))
    if proto is None:
        proto = 6 if "tcp.flags" in vals else 1 if "icmp.type" in extra and not v6 else \
            58 if "icmp.type" in extra else 17
    ip = v4 or v6 or any(k in vals for k in l4_keys) or "mpegts" in extra or "payload" in extra \
        or "icmp.type" in extra
    if "mpegts" in extra and proto != 17:
        raise UsageError("packet: mpegts=... needs a UDP frame (ipv4.proto=udp)")

    payload = b""
    if "payload" in extra:
        try:
            payload = bytes.fromhex(extra["payload"].replace(":", ""))
        except ValueError:
            raise UsageError(f"packet: payload={extra['payload']}: expected hex bytes") from None
    if "mpegts" in extra:
        payload = mpegts_payload(extra["mpegts"].lower()) + payload

    l4 = b""
    if ip:
        sport, dport = vals.get("l4.sport", 4000), vals.get("l4.dport", 4000)
        if proto == 17:
            l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        elif proto == 6:
            l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, vals.get("tcp.flags", 0x02), 65535, 0, 0) \
                + payload
        elif proto in (1, 58):
            itype = num("icmp.type", 255)
            l4 = struct.pack("!BBHHH", (8 if proto == 1 else 128) if itype is None else itype,
                             num("icmp.code", 255) or 0, 0, 1, 1) + payload
        else:
            l4 = payload
        if v6:
            src = ipaddress.IPv6Address(vals.get("ipv6.src", int(ipaddress.IPv6Address("2001:db8::1")))).packed
            dst = ipaddress.IPv6Address(vals.get("ipv6.dst", int(ipaddress.IPv6Address("2001:db8::2")))).packed
            pseudo = src + dst + struct.pack("!IxxxB", len(l4), proto)
        else:
            src = ipaddress.IPv4Address(vals.get("ipv4.src", int(ipaddress.IPv4Address("10.0.0.1")))).packed
            dst = ipaddress.IPv4Address(vals.get("ipv4.dst", int(ipaddress.IPv4Address("10.0.0.2")))).packed
            pseudo = src + dst + struct.pack("!xBH", proto, len(l4))
        if proto in (6, 17, 58) or (proto == 1 and l4):
            off = {17: 6, 6: 16, 1: 2, 58: 2}[proto]
            csum = checksum((pseudo if proto != 1 else b"") + l4)
            if proto == 17 and csum == 0:
                csum = 0xFFFF
            l4 = l4[:off] + struct.pack("!H", csum) + l4[off + 2:]
        dscp = vals.get("ipv4.dscp", 0)
        ttl = vals.get("ipv4.ttl", vals.get("ipv6.hop", 64))
        if v6:
            l3 = struct.pack("!IHBB", (6 << 28) | (dscp << 22), len(l4), proto, ttl) + src + dst
            ethertype = 0x86DD
        else:
            hdr = struct.pack("!BBHHHBBH", 0x45, dscp << 2, 20 + len(l4), 1, 0, ttl, proto, 0) + src + dst
            l3 = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
            ethertype = 0x0800
        body = l3 + l4
    else:
        ethertype = vals.get("eth.type", 0x88B5)   # local experimental: a frame the parser leaves at L2
        body = payload
    if labels:
        tc, mttl = num("mpls.tc", 7) or 0, num("mpls.ttl", 255)
        mttl = ttl if mttl is None and ip else (mttl if mttl is not None else 64)
        stack = b"".join(struct.pack("!I", (lab << 12) | (tc << 9) | ((i == len(labels) - 1) << 8) | mttl)
                         for i, lab in enumerate(labels))
        body = stack + body
        ethertype = 0x8847
    if "eth.type" in vals and ip:
        ethertype = vals["eth.type"]
    tags = b""
    if "vlan.id" in vals:
        outer_type = 0x88A8 if "vlan.inner" in vals else 0x8100
        tags += struct.pack("!H", outer_type) + struct.pack("!H", vals["vlan.id"])
        if "vlan.inner" in vals:
            tags += struct.pack("!HH", 0x8100, vals["vlan.inner"])
    elif "vlan.inner" in vals:
        raise UsageError("packet: vlan.inner needs vlan.id (the outer tag)")
    mac = lambda k, d: vals[k].to_bytes(6, "big") if k in vals else bytes.fromhex(d.replace(":", ""))  # noqa: E731
    frame = mac("eth.dst", DEFAULT_DST) + mac("eth.src", DEFAULT_SRC) + tags + struct.pack("!H", ethertype) + body
    want = num("len", 9000)
    if want is not None:
        if want < len(frame):
            raise UsageError(f"packet: len={want}: the headers alone take {len(frame)} bytes")
        frame += bytes(want - len(frame))
    return frame


def frame_from_hex(text: str) -> bytes:
    clean = re.sub(r"[\s:]", "", text)
    if clean.startswith(("0x", "0X")):
        clean = clean[2:]
    try:
        frame = bytes.fromhex(clean)
    except ValueError:
        raise UsageError(f"--hex: not hex bytes ({text[:40]!r}...)") from None
    if len(frame) < 14:
        raise UsageError(f"--hex: {len(frame)} bytes, a frame needs at least an Ethernet header (14)")
    return frame


def read_pcap(path: str) -> list[bytes]:
    """Every frame of a pcap (either byte order, us or ns) or pcapng file (EPB / SPB blocks)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise UsageError(f"--pcap {path}: {exc.strerror}") from None
    if len(data) < 24:
        raise UsageError(f"--pcap {path}: not a pcap or pcapng file (too short)")
    magic = data[:4]
    frames = []
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        bo = "<" if magic[0] in (0xd4, 0x4d) else ">"
        pos = 24
        while pos + 16 <= len(data):
            _s, _us, incl, _orig = struct.unpack_from(bo + "IIII", data, pos)
            frames.append(data[pos + 16:pos + 16 + incl])
            pos += 16 + incl
        return frames
    if magic == b"\x0a\x0d\x0d\x0a":
        bo = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        pos = 0
        while pos + 12 <= len(data):
            btype, blen = struct.unpack_from(bo + "II", data, pos)
            if blen < 12:
                break
            if btype == 6:       # enhanced packet block
                caplen = struct.unpack_from(bo + "I", data, pos + 20)[0]
                frames.append(data[pos + 28:pos + 28 + caplen])
            elif btype == 3:     # simple packet block
                frames.append(data[pos + 12:pos + blen - 4])
            pos += blen
        return frames
    raise UsageError(f"--pcap {path}: not a pcap or pcapng file (magic {magic.hex()})")


def frame_from_pcap(path: str, index: int) -> bytes:
    frames = read_pcap(path)
    if not 0 <= index < len(frames):
        raise UsageError(f"--index {index}: {path} holds {len(frames)} frame(s) (index from 0)")
    return frames[index]
