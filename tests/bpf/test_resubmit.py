"""Resubmit: BPF_PROG_RUN with live frames re-enters the root pipe as if the
frame was received on the port (packet_path RESUBMIT), really leaves through the
chosen port, and is never handed to the miss handler a second time."""
from __future__ import annotations

import ctypes
import socket
import subprocess
import time

from scapy.all import IP, UDP, Ether, raw


def _resubmit(dp, port: int, frame: bytes):
    """Call pf_ebpf_resubmit in the loaded core (not part of the Python API)."""
    from pyflow import _native

    so = ctypes.CDLL(_native.__file__)
    so.pf_ebpf_from_instance.restype = ctypes.c_void_p
    so.pf_ebpf_from_instance.argtypes = [ctypes.c_void_p]
    so.pf_ebpf_resubmit.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_uint32,
                                    ctypes.c_void_p]
    eb = so.pf_ebpf_from_instance(int(dp.ffi.cast("uintptr_t", dp.inst)))
    err = dp.ffi.new("struct pf_error *")
    ret = so.pf_ebpf_resubmit(eb, port, frame, len(frame), int(dp.ffi.cast("uintptr_t", err)))
    assert ret == 0, dp.ffi.string(err.msg).decode()


def test_resubmitted_frame_takes_the_new_entry_and_leaves(dp, veth_ns):
    from pyflow.native import bpf_object_dir

    lib = dp.lib
    # the receiving end of port 1 needs XDP for a redirected frame to be delivered
    subprocess.run(["ip", "link", "set", "dev", veth_ns["d"], "xdp", "obj", f"{bpf_object_dir()}/xdp_pass.bpf.o",
                    "sec", "xdp"], check=True)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    sock.bind((veth_ns["d"], 0))
    sock.settimeout(2)

    masks = [dp.fields(packet_path=0xFF, ipv4_src=0xFFFFFFFF)]
    dp.pipe(1, lib.PF_PIPE_BASIC, masks, fwd_miss=(lib.PF_FWD_MISS, 0), root=True)
    src = socket.inet_aton("192.168.99.101")
    eid = dp.entry(1, dp.fields(packet_path=lib.PF_PATH_RESUBMIT, ipv4_src=int.from_bytes(src, "little")),
                   fwd=(lib.PF_FWD_PORT, 1), flags=lib.PF_ACT_SET_IPV4_DST,
                   ipv4_dst=int.from_bytes(socket.inet_aton("193.169.100.102"), "little"))
    frame = raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                IP(src="192.168.99.101", dst="20.1.1.100") / UDP(sport=7, dport=9) / b"resubmit")
    # a normal arrival of the same frame misses (no handler bound here)
    assert dp.run(0, frame)[1].drop_reason == lib.PF_DROP_NO_MISS
    for _ in range(3):
        _resubmit(dp, 0, frame)
    got = []
    deadline = time.time() + 2
    while len(got) < 3 and time.time() < deadline:
        data = sock.recv(2048)
        if IP in Ether(data) and Ether(data)[IP].src == "192.168.99.101":
            got.append(Ether(data))
    sock.close()
    assert len(got) == 3
    assert all(p[IP].dst == "193.169.100.102" and p[UDP].load == b"resubmit" for p in got)
    ref = got[0].copy()
    del ref[IP].chksum, ref[UDP].chksum
    assert raw(Ether(raw(ref))) == raw(got[0])
    assert dp.entry_counters(eid)[0][0] == 3
    assert dp.port_counters(1).tx_packets == 3


def test_resubmitted_frame_that_misses_is_dropped_not_looped(dp):
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields(ip_proto=0xFF)], fwd_miss=(lib.PF_FWD_MISS, 0), root=True)
    frame = raw(Ether() / IP() / UDP())
    for _ in range(5):
        _resubmit(dp, 0, frame)
    c = dp.port_counters(0)
    assert (c.rx_packets, c.drops[lib.PF_DROP_NO_MISS], c.tx_packets) == (5, 5, 0)
    assert dp.pipe_counters(1).misses == 5


def test_veth_peer_check(veth_ns):
    """pf_ebpf_veth_peer_check: 1 (with a reason) while the peer has neither XDP nor GRO, 0 once it has XDP."""
    from pyflow import _native
    from pyflow.native import bpf_object_dir

    so = ctypes.CDLL(_native.__file__)
    so.pf_ebpf_veth_peer_check.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
    reason = ctypes.create_string_buffer(512)
    subprocess.run(["ethtool", "-K", veth_ns["b"], "gro", "off"], capture_output=True)
    assert so.pf_ebpf_veth_peer_check(veth_ns["a"].encode(), reason, 512) == 1
    assert veth_ns["b"] in reason.value.decode() and "dropped" in reason.value.decode()
    subprocess.run(["ip", "link", "set", "dev", veth_ns["b"], "xdp", "obj", f"{bpf_object_dir()}/xdp_pass.bpf.o",
                    "sec", "xdp"], check=True)
    assert so.pf_ebpf_veth_peer_check(veth_ns["a"].encode(), reason, 512) == 0
    assert so.pf_ebpf_veth_peer_check(b"lo", reason, 512) == 0
