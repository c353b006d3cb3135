"""Frames, the BPF_PROG_RUN live-frames generator and the XDP sink counter."""
from __future__ import annotations

import ipaddress
import json
import os
import struct

from .common import run

# The resubmit example's flows: users on 192.168.99.101.. talking to 20.1.1.100.
FLOW_SRC_BASE = "192.168.99.101"
FLOW_DST = "20.1.1.100"
REWRITE_ADD = "1.1.1.1"          # the resubmit example's miss policy: ipv4.dst = ipv4.src + 1.1.1.1
GEN_CPU = 0


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def ipv4_checksum(header: bytes) -> int:
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(dst_mac: str, src_mac: str, src_ip: str, dst_ip: str, wire_size: int) -> bytes:
    """An Ethernet/IPv4/UDP frame of wire_size bytes on the wire, i.e. wire_size - 4 (no FCS on a veth)."""
    length = max(60, wire_size - 4)
    ip_len = length - 14
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, 0, 0x4000, 64, 17, 0,
                     ipaddress.IPv4Address(src_ip).packed, ipaddress.IPv4Address(dst_ip).packed)
    ip = ip[:10] + struct.pack("!H", ipv4_checksum(ip)) + ip[12:]
    udp = struct.pack("!HHHH", 40000, 5201, ip_len - 20, 0)
    payload = bytes(ip_len - 28)
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + b"\x08\x00" + ip + udp + payload


def rewritten_dst(src_ip: str) -> str:
    """ipv4.src + 1.1.1.1, bytewise with carry as the resubmit example's miss policy computes it."""
    return str(ipaddress.IPv4Address((int(ipaddress.IPv4Address(src_ip)) + int(ipaddress.IPv4Address(REWRITE_ADD))) & 0xFFFFFFFF))


def flow_sources(n: int, base: str = FLOW_SRC_BASE) -> list[str]:
    start = int(ipaddress.IPv4Address(base))
    return [str(ipaddress.IPv4Address(start + i)) for i in range(n)]


class Generator:
    def __init__(self, lab):
        self.lab = lab

    def send(self, frame: bytes, *, duration: float | None = None, count: int | None = None, batch: int = 64,
             nflows: int = 1, src_base: str = FLOW_SRC_BASE, record_sent: str | None = None,
             interval_us: int = 0, cpu: int = GEN_CPU) -> dict:
        from .lab import GEN_IF
        cmd = [self.lab.tools.pfbtool, "gen", self.lab.tools.gen_obj, GEN_IF, frame.hex(),
               "--batch", str(batch), "--cpu", str(cpu), "--nflows", str(nflows), "--src-base", src_base]
        if duration is not None:
            cmd += ["--duration", str(duration)]
        if count is not None:
            cmd += ["--count", str(count)]
        if interval_us:
            cmd += ["--interval-us", str(interval_us)]
        if record_sent:
            cmd += ["--record-sent", record_sent]
        timeout = (duration or 0) + (count or 0) * (interval_us + 50) / 1e6 + 60
        return json.loads(run(cmd, ns=self.lab.ns_gen, timeout=timeout))


class Sink:
    def __init__(self, lab):
        self.lab = lab

    def configure(self, orig_dst: str = FLOW_DST, record_first: bool = False) -> None:
        run([self.lab.tools.pfbtool, "sink-cfg", self.lab.sink_pin, orig_dst, "1" if record_first else "0"])

    def read(self) -> dict:
        return json.loads(run([self.lab.tools.pfbtool, "sink-read", self.lab.sink_pin]))

    def first_seen(self) -> dict[int, int]:
        return parse_stamps(run([self.lab.tools.pfbtool, "sink-first", self.lab.sink_pin]))


def parse_stamps(text: str) -> dict[int, int]:
    stamps = {}
    for line in text.splitlines():
        src, ns = line.split()
        stamps[int(src, 16)] = int(ns)
    return stamps


def read_stamps(path: str) -> dict[int, int]:
    if not os.path.exists(path):
        return {}
    with open(path) as fh:
        return parse_stamps(fh.read())
