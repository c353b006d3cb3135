"""The matchable / settable fields of the pipe model and how their values are written.

Every value is normalised to a Python int (addresses too); the compiler turns
it into bytes in the order shared.h asks for (headers network order,
metadata and labels host order).
"""
from __future__ import annotations

import ipaddress
import re
import sys
from dataclasses import dataclass

PACKET_PATHS = {"normal": 0, "normal_unicast": 1, "normal_multicast": 2, "clone_i2e": 3,
                "clone_e2e": 4, "resubmit": 5, "recirculate": 6}
MPEGTS_FRAMES = {"none": 0, "reference": 1, "non-reference": 2, "psi": 3}
IP_PROTOS = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "icmpv6": 58, "sctp": 132}
ETH_TYPES = {"ipv4": 0x0800, "arp": 0x0806, "vlan": 0x8100, "ipv6": 0x86DD, "mpls": 0x8847, "qinq": 0x88A8}


@dataclass(frozen=True)
class Field:
    name: str
    attr: str            # member of struct pf_fields
    kind: str            # uint | be | mac | ipv4 | ipv6 | enum | port
    bits: int            # significant bits of the value
    size: int            # bytes of the pf_fields member
    field_id: str        # enum pf_field_id member
    set_flag: str | None = None   # PF_ACT_SET_* flag when entries may set it
    set_attr: str | None = None   # member of struct pf_actions written by that set
    names: dict | None = None     # symbolic values

    @property
    def full_mask(self) -> int:
        return (1 << self.bits) - 1

    @property
    def is_address(self) -> bool:
        return self.kind in ("ipv4", "ipv6")


def _f(*args, **kw) -> Field:
    return Field(*args, **kw)


FIELDS: dict[str, Field] = {f.name: f for f in (
    _f("meta.port", "port", "port", 32, 4, "PF_FIELD_META_PORT"),
    _f("meta.mark", "mark", "uint", 32, 4, "PF_FIELD_META_MARK", "PF_ACT_SET_MARK", "mark"),
    _f("meta.packet_path", "packet_path", "enum", 8, 1, "PF_FIELD_META_PACKET_PATH", names=PACKET_PATHS),
    _f("mpegts.frame", "mpegts_frame", "enum", 8, 1, "PF_FIELD_MPEGTS_FRAME", names=MPEGTS_FRAMES),
    _f("eth.src", "eth_src", "mac", 48, 6, "PF_FIELD_ETH_SRC", "PF_ACT_SET_ETH_SRC", "eth_src"),
    _f("eth.dst", "eth_dst", "mac", 48, 6, "PF_FIELD_ETH_DST", "PF_ACT_SET_ETH_DST", "eth_dst"),
    _f("eth.type", "eth_type", "be", 16, 2, "PF_FIELD_ETH_TYPE", names=ETH_TYPES),
    _f("vlan.id", "vlan_id", "uint", 12, 2, "PF_FIELD_VLAN_ID", "PF_ACT_SET_VLAN", "vlan_id"),
    _f("vlan.inner", "vlan_inner", "uint", 12, 2, "PF_FIELD_VLAN_INNER"),
    _f("mpls.label", "mpls_label", "uint", 20, 4, "PF_FIELD_MPLS_LABEL"),
    _f("ipv4.src", "ipv4_src", "ipv4", 32, 4, "PF_FIELD_IPV4_SRC", "PF_ACT_SET_IPV4_SRC", "ipv4_src"),
    _f("ipv4.dst", "ipv4_dst", "ipv4", 32, 4, "PF_FIELD_IPV4_DST", "PF_ACT_SET_IPV4_DST", "ipv4_dst"),
    _f("ipv4.proto", "ip_proto", "uint", 8, 1, "PF_FIELD_IP_PROTO", names=IP_PROTOS),
    _f("ipv4.ttl", "ip_ttl", "uint", 8, 1, "PF_FIELD_IP_TTL"),
    _f("ipv4.dscp", "ip_dscp", "uint", 6, 1, "PF_FIELD_IP_DSCP", "PF_ACT_SET_DSCP", "dscp"),
    _f("ipv6.src", "ipv6_src", "ipv6", 128, 16, "PF_FIELD_IPV6_SRC", "PF_ACT_SET_IPV6_SRC", "ipv6_src"),
    _f("ipv6.dst", "ipv6_dst", "ipv6", 128, 16, "PF_FIELD_IPV6_DST", "PF_ACT_SET_IPV6_DST", "ipv6_dst"),
    _f("ipv6.next", "ip_proto", "uint", 8, 1, "PF_FIELD_IP_PROTO", names=IP_PROTOS),
    _f("ipv6.hop", "ip_ttl", "uint", 8, 1, "PF_FIELD_IP_TTL"),
    _f("l4.sport", "l4_sport", "be", 16, 2, "PF_FIELD_L4_SPORT", "PF_ACT_SET_L4_SPORT", "l4_sport"),
    _f("l4.dport", "l4_dport", "be", 16, 2, "PF_FIELD_L4_DPORT", "PF_ACT_SET_L4_DPORT", "l4_dport"),
    _f("tcp.flags", "tcp_flags", "uint", 8, 1, "PF_FIELD_TCP_FLAGS"),
)}

SETTABLE = {name for name, f in FIELDS.items() if f.set_flag}
# Action operations an entry may use besides setting fields; a pipe lists the ones it allows.
OPERATIONS = ("dec_ttl", "push_vlan", "pop_vlan", "push_mpls", "pop_mpls", "clone", "count", "drop_pct")
ACTION_TEMPLATES = tuple(sorted(SETTABLE)) + OPERATIONS
LPM_FIELDS = {"ipv4.dst": "PF_LPM_IPV4_DST", "ipv4.src": "PF_LPM_IPV4_SRC",
              "ipv6.dst": "PF_LPM_IPV6_DST", "ipv6.src": "PF_LPM_IPV6_SRC"}

# dotted quad, no leading zeros (as ipaddress requires)
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = re.compile(r"\.".join([_OCTET] * 4))


_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$")


def _describe(field: Field) -> str:
    if field.kind == "mac":
        return "a MAC address like 02:00:00:00:00:01"
    if field.kind == "ipv4":
        return "an IPv4 address like 10.0.0.1"
    if field.kind == "ipv6":
        return "an IPv6 address like 2001:db8::1"
    if field.kind == "enum":
        return "one of " + ", ".join(field.names)
    if field.kind == "port":
        return "a port name or id"
    text = f"an integer 0..{field.full_mask}"
    if field.names:
        text += " or one of " + ", ".join(field.names)
    return text


def parse_scalar(field: Field, raw, ports: dict[str, int] | None = None) -> int:
    """Parse one value of field; raises ValueError with what was expected."""
    if field.kind == "ipv4" and isinstance(raw, str):
        m = _IPV4_RE.fullmatch(raw)     # the common case, without building an IPv4Address
        if m:
            a, b, c, d = map(int, m.groups())
            return a << 24 | b << 16 | c << 8 | d
    if isinstance(raw, bool):
        raise ValueError(f"{field.name} expects {_describe(field)}, got {raw!r}")
    if field.kind == "port" and isinstance(raw, str) and ports is not None:
        if raw in ports:
            return ports[raw]
        from .errors_util import suggest
        raise ValueError(f"unknown port {raw!r}{suggest(raw, ports)}")
    if field.names and isinstance(raw, str) and raw in field.names:
        return field.names[raw]
    if field.kind == "enum":
        if isinstance(raw, int) and 0 <= raw <= max(field.names.values()):
            return raw
        from .errors_util import suggest
        hint = suggest(raw, field.names) if isinstance(raw, str) else ""
        raise ValueError(f"{field.name} expects {_describe(field)}, got {raw!r}{hint}")
    if field.kind == "mac":
        if isinstance(raw, str) and _MAC_RE.match(raw):
            return int(re.sub("[:-]", "", raw), 16)
        raise ValueError(f"{field.name} expects {_describe(field)}, got {raw!r}")
    if field.is_address:
        cls = ipaddress.IPv4Address if field.kind == "ipv4" else ipaddress.IPv6Address
        if isinstance(raw, str):
            try:
                return int(cls(raw))
            except ValueError:
                pass
        raise ValueError(f"{field.name} expects {_describe(field)}, got {raw!r}")
    value = raw
    if isinstance(raw, str) and re.fullmatch(r"0[xX][0-9a-fA-F]+|\d+", raw):
        value = int(raw, 0)
    if not isinstance(value, int) or not 0 <= value <= field.full_mask:
        raise ValueError(f"{field.name} expects {_describe(field)}, got {raw!r}")
    return value


def parse_prefix(field: Field, raw: str) -> tuple[int, int]:
    """'10.0.0.0/8' -> (address int, prefix length); host bits must be clear."""
    net_cls = ipaddress.IPv4Network if field.kind == "ipv4" else ipaddress.IPv6Network
    try:
        net = net_cls(raw, strict=True)
    except ValueError:
        try:
            loose = net_cls(raw, strict=False)
        except ValueError:
            example = "10.0.0.0/8" if field.kind == "ipv4" else "2001:db8::/32"
            raise ValueError(f"{field.name} expects a prefix like {example}, got {raw!r}") from None
        raise ValueError(f"{field.name} prefix {raw!r} has host bits set; did you mean '{loose}'?") from None
    return int(net.network_address), net.prefixlen


def prefix_mask(field: Field, prefixlen: int) -> int:
    return ((1 << prefixlen) - 1) << (field.bits - prefixlen)


def is_prefix(raw) -> bool:
    return isinstance(raw, str) and "/" in raw


def to_bytes(field: Field, value: int) -> bytes:
    """Bytes of value as stored in the pf_fields / pf_actions member (headers network order)."""
    if field.kind in ("mac", "ipv4", "ipv6", "be"):
        return value.to_bytes(field.size, "big")
    return value.to_bytes(field.size, sys.byteorder)


def from_bytes(field: Field, data: bytes) -> int:
    if field.kind in ("mac", "ipv4", "ipv6", "be"):
        return int.from_bytes(data, "big")
    return int.from_bytes(data, sys.byteorder)


def format_value(field: Field, value: int) -> str:
    if field.kind == "ipv4":
        return str(ipaddress.IPv4Address(value))
    if field.kind == "ipv6":
        return str(ipaddress.IPv6Address(value))
    if field.kind == "mac":
        return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big"))
    if field.kind == "enum":
        for name, v in field.names.items():
            if v == value:
                return name
    if field.name == "eth.type":
        return f"0x{value:04x}"
    return str(value)


def format_masked(field: Field, value: int, mask: int) -> str | None:
    """A matched value as users write it: None when the field is wildcarded, the plain value when exact,
    ADDR/LEN for an address prefix, VALUE/0xMASK for any other mask (as ovs-ofctl prints them)."""
    mask &= field.full_mask
    if mask == 0:
        return None
    if mask == field.full_mask:
        return format_value(field, value)
    value &= mask
    if field.is_address:
        host = field.full_mask ^ mask
        if host & (host + 1) == 0:      # contiguous leading ones: a prefix
            return f"{format_value(field, value)}/{field.bits - host.bit_length()}"
    shown = format_value(field, value) if field.kind in ("ipv4", "ipv6", "mac") else str(value)
    return f"{shown}/0x{mask:x}"
