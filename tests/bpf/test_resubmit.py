"""Resubmit: BPF_PROG_RUN with live frames re-enters the root pipe as if the
frame was received on the port (packet_path RESUBMIT), really leaves through the
chosen port, and is never handed to the miss handler a second time."""
from __future__ import annotations

import ctypes
import socket
import subprocess
import time

import pytest
from scapy.all import IP, UDP, Ether, raw


def _resubmit(dp, port: int, frame: bytes, missed_pipe: int | None = None):
    """Call pf_ebpf_resubmit (or pf_ebpf_resubmit_from when the pipe that missed
    is given) in the loaded core (not part of the Python API)."""
    from pyflow import _native

    so = ctypes.CDLL(_native.__file__)
    so.pf_ebpf_from_instance.restype = ctypes.c_void_p
    so.pf_ebpf_from_instance.argtypes = [ctypes.c_void_p]
    eb = so.pf_ebpf_from_instance(int(dp.ffi.cast("uintptr_t", dp.inst)))
    err = dp.ffi.new("struct pf_error *")
    errp = int(dp.ffi.cast("uintptr_t", err))
    if missed_pipe is None:
        so.pf_ebpf_resubmit.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_uint32,
                                        ctypes.c_void_p]
        ret = so.pf_ebpf_resubmit(eb, port, frame, len(frame), errp)
    else:
        so.pf_ebpf_resubmit_from.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_char_p,
                                             ctypes.c_uint32, ctypes.c_void_p]
        ret = so.pf_ebpf_resubmit_from(eb, port, missed_pipe, frame, len(frame), errp)
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
    # it was received (and counted) once already, before its first miss
    assert (c.rx_packets, c.drops[lib.PF_DROP_NO_MISS], c.tx_packets) == (0, 5, 0)
    assert dp.pipe_counters(1).misses == 5


def _resubmit_pipes(dp):
    """root (meta.port -> pipe h2n, decrementing the TTL on the way) and h2n (ipv4.src, misses to the handler)."""
    lib = dp.lib
    dp.pipe(1, lib.PF_PIPE_CONTROL, [dp.fields(port=0xFFFFFFFF)], fwd_miss=(lib.PF_FWD_DROP, 0), root=True)
    dp.pipe(2, lib.PF_PIPE_BASIC, [dp.fields(ipv4_src=0xFFFFFFFF)], fwd=(lib.PF_FWD_PORT, 1),
            fwd_miss=(lib.PF_FWD_MISS, 0), domain=lib.PF_DOMAIN_EGRESS)
    root_entry = dp.entry(1, dp.fields(port=0), fwd=(lib.PF_FWD_PIPE, 2), flags=lib.PF_ACT_DEC_TTL)
    return root_entry


@pytest.mark.parametrize("say_which_pipe", [True, False])
def test_resubmit_counts_only_from_the_pipe_that_missed(dp, say_which_pipe):
    """Packet resubmit: after N first packets the root entry and the rx counter read N, the learned entries 1 each."""
    lib = dp.lib
    root_entry = _resubmit_pipes(dp)
    sources = [f"192.168.99.{i}" for i in range(101, 104)]
    missed = {}
    for src in sources:
        frame = raw(Ether() / IP(src=src, dst="20.1.1.100", ttl=64) / UDP(sport=7, dport=9))
        action, verdict, out = dp.run(0, frame)
        # no handler bound here: the miss is dropped, but it is the frame the handler would get
        assert (verdict.kind, verdict.last_pipe) == (lib.PF_VERDICT_DROP, 2)
        missed[src] = out
    learned = {src: dp.entry(2, dp.fields(ipv4_src=int.from_bytes(socket.inet_aton(src), "little")))
               for src in sources}
    for src in sources:
        _resubmit(dp, 0, missed[src], 2 if say_which_pipe else None)

    assert dp.entry_counters(root_entry)[0][0] == len(sources)
    assert [dp.entry_counters(learned[s])[0][0] for s in sources] == [1] * len(sources)
    assert dp.port_counters(0).rx_packets == len(sources)
    assert dp.port_counters(1).tx_packets == len(sources)
    assert dp.pipe_counters(1).hits == len(sources)
    assert (dp.pipe_counters(2).hits, dp.pipe_counters(2).misses) == (len(sources), len(sources))


def test_resubmit_does_not_apply_earlier_actions_twice(dp, veth_ns):
    """The frame handed to the handler already carries the root entry's TTL decrement."""
    from pyflow.native import bpf_object_dir

    _resubmit_pipes(dp)
    subprocess.run(["ip", "link", "set", "dev", veth_ns["d"], "xdp", "obj", f"{bpf_object_dir()}/xdp_pass.bpf.o",
                    "sec", "xdp"], check=True)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    sock.bind((veth_ns["d"], 0))
    sock.settimeout(2)
    frame = raw(Ether() / IP(src="192.168.99.101", dst="20.1.1.100", ttl=64) / UDP(sport=7, dport=9) / b"ttl")
    missed = dp.run(0, frame)[2]
    assert Ether(missed)[IP].ttl == 63
    dp.entry(2, dp.fields(ipv4_src=int.from_bytes(socket.inet_aton("192.168.99.101"), "little")))
    _resubmit(dp, 0, missed, 2)
    got = None
    deadline = time.time() + 2
    while got is None and time.time() < deadline:
        pkt = Ether(sock.recv(2048))
        if IP in pkt and pkt[IP].src == "192.168.99.101":
            got = pkt
    sock.close()
    assert got is not None and got[IP].ttl == 63


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
