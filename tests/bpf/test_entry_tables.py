"""Exact/control entries live in one of three tables by their mask slot: a mask
on meta.port alone indexes an array (port_entries), a mask on at most four
32-bit words of pf_fields packs into a 20-byte key (entries_c), a wider one
keys the full pf_flow_key (entries). The table is an implementation detail:
hits, misses, priorities, replace, remove, listing and a pinned restart must
behave the same whichever one an entry is in."""
from __future__ import annotations

import pytest
from scapy.all import IP, TCP, UDP, Ether, raw

from pyflow.native import bpf_object_dir, call, ffi, lib

from .test_datapath import XDP_DROP, XDP_REDIRECT, eth

MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


def _ip4(addr: str) -> int:
    """An IPv4 address as struct pf_fields stores it (network order)."""
    return int.from_bytes(bytes(int(x) for x in addr.split(".")), "little")


def _port16(port: int) -> int:
    return int.from_bytes(port.to_bytes(2, "big"), "little")


def _mac(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def five_tuple(dp):
    return dp.fields(ip_proto=0xFF, ipv4_src=0xFFFFFFFF, ipv4_dst=0xFFFFFFFF, l4_dport=0xFFFF)


def wide(dp):
    """eth_dst, eth_src and both addresses: more words than a packed key holds."""
    return dp.fields(eth_dst=b"\xff" * 6, eth_src=b"\xff" * 6, ipv4_src=0xFFFFFFFF, ipv4_dst=0xFFFFFFFF)


def _list(dp, pipe):
    out = ffi.new("struct pf_entry_info[]", 64)
    count = ffi.new("uint32_t *")
    call(lib.pf_entry_list, dp.inst, pipe, out, 64, count)
    return {out[i].entry.id: out[i] for i in range(count[0])}


def test_every_table_hits_misses_and_counts(dp):
    lib_ = dp.lib
    dp.pipe(1, lib_.PF_PIPE_CONTROL, [dp.fields(port=0xFFFFFFFF)], fwd_miss=(lib_.PF_FWD_DROP, 0), root=True)
    by_port = dp.entry(1, dp.fields(port=0), fwd=(lib_.PF_FWD_PIPE, 2))
    dp.pipe(2, lib_.PF_PIPE_BASIC, [five_tuple(dp)], fwd_miss=(lib_.PF_FWD_PIPE, 3))
    tuple_hit = dp.entry(2, dp.fields(ip_proto=17, ipv4_src=_ip4("10.0.0.1"), ipv4_dst=_ip4("10.0.0.2"),
                                      l4_dport=_port16(53)), fwd=(lib_.PF_FWD_PORT, 1))
    dp.pipe(3, lib_.PF_PIPE_BASIC, [wide(dp)], fwd_miss=(lib_.PF_FWD_DROP, 0))
    wide_hit = dp.entry(3, dp.fields(eth_dst=_mac(MAC_B), eth_src=_mac(MAC_A), ipv4_src=_ip4("10.0.0.1"),
                                     ipv4_dst=_ip4("10.0.0.3")), fwd=(lib_.PF_FWD_PORT, 0))

    def frame(dst, dport=53, proto=UDP):
        return raw(Ether(src=MAC_A, dst=MAC_B) / IP(src="10.0.0.1", dst=dst) / proto(dport=dport))

    ret, v, _ = dp.run(0, frame("10.0.0.2"))
    assert (ret, v.out_port, v.entry_id, v.hops) == (XDP_REDIRECT, 1, tuple_hit, 2)
    ret, v, _ = dp.run(0, frame("10.0.0.3"))                  # the 5-tuple misses, the wide mask hits
    assert (ret, v.out_port, v.entry_id, v.hops) == (XDP_REDIRECT, 0, wide_hit, 3)
    ret, v, _ = dp.run(0, frame("10.0.0.2", proto=TCP))       # one masked word differs: no packed hit
    assert (ret, v.entry_id) == (XDP_DROP, by_port)
    ret, v, _ = dp.run(1, frame("10.0.0.2"))                  # no entry for port 1 in the array
    assert (ret, v.last_pipe, v.entry_id) == (XDP_DROP, 1, 0xFFFFFFFF)
    assert [c[0] for c in dp.entry_counters(by_port, tuple_hit, wide_hit)] == [3, 1, 1]
    listed = _list(dp, 0xFFFFFFFF)
    assert set(listed) == {by_port, tuple_hit, wide_hit}
    assert listed[by_port].entry.flags == 0                    # the in-use mark of the array is not shown
    assert listed[by_port].match.port == 0
    assert listed[tuple_hit].match.l4_dport == _port16(53)
    assert listed[wide_hit].match.ipv4_dst == _ip4("10.0.0.3")


def test_port_entries_priority_replace_and_remove(dp):
    """A control pipe with a port slot and a packed slot: the lower priority value wins
    across both; replace and remove of an array element act at once."""
    lib_ = dp.lib
    dp.pipe(1, lib_.PF_PIPE_CONTROL, [dp.fields(port=0xFFFFFFFF), dp.fields(ip_proto=0xFF)],
            fwd_miss=(lib_.PF_FWD_DROP, 0), root=True)
    by_port = dp.entry(1, dp.fields(port=0), fwd=(lib_.PF_FWD_PORT, 1), mask_idx=0, priority=5)
    by_proto = dp.entry(1, dp.fields(ip_proto=17), fwd=(lib_.PF_FWD_PORT, 0), mask_idx=1, priority=7)
    frame = raw(eth() / IP() / UDP())
    assert dp.run(0, frame)[1].entry_id == by_port

    e = ffi.new("struct pf_entry *", {"fwd": {"type": lib_.PF_FWD_PORT, "target": 1}, "priority": 9})
    call(lib.pf_entry_replace, dp.inst, by_port, 1, 0, 0, dp.fields(port=0), e)
    assert dp.run(0, frame)[1].entry_id == by_proto           # now the other slot's entry wins
    e.priority = 1
    call(lib.pf_entry_replace, dp.inst, by_port, 1, 0, 0, dp.fields(port=1), e)
    ret, v, _ = dp.run(1, frame)                               # moved to port 1, same id
    assert (ret, v.entry_id) == (XDP_REDIRECT, by_port)
    assert dp.run(0, frame)[1].entry_id == by_proto

    with pytest.raises(Exception, match="already has this match"):
        other = dp.entry(1, dp.fields(port=2), fwd=(lib_.PF_FWD_DROP, 0))
        call(lib.pf_entry_replace, dp.inst, other, 1, 0, 0, dp.fields(port=1), e)

    call(lib.pf_entry_del, dp.inst, by_port)
    ret, v, _ = dp.run(1, frame)
    assert (ret, v.entry_id) == (XDP_REDIRECT, by_proto)
    again = dp.entry(1, dp.fields(port=1), fwd=(lib_.PF_FWD_KERNEL, 0), priority=2)
    assert dp.run(1, frame)[1].entry_id == again
    assert dp.entry_counters(again) == [(1, len(frame))]      # a reused element starts from zero


def test_port_entry_out_of_range_is_refused(dp):
    dp.pipe(1, dp.lib.PF_PIPE_BASIC, [dp.fields(port=0xFFFFFFFF)], root=True)
    with pytest.raises(Exception, match="meta.port 64 out of range"):
        dp.entry(1, dp.fields(port=64))
    assert _list(dp, 1) == {}


def test_port_masks_beyond_the_array_blocks_are_packed(dp):
    """Every mask slot on meta.port alone gets an array block while there are any;
    the slots after that are packed keys, and still hit."""
    lib_ = dp.lib
    ids = {}
    npipes = 20
    for p in range(1, npipes + 1):
        fwd = (lib_.PF_FWD_PIPE, p + 1) if p < npipes else (lib_.PF_FWD_PORT, 1)
        dp.pipe(p, lib_.PF_PIPE_BASIC, [dp.fields(port=0xFFFFFFFF)], fwd_miss=(lib_.PF_FWD_DROP, 0),
                root=(p == 1))
        ids[p] = dp.entry(p, dp.fields(port=0), fwd=fwd)
    ret, v, _ = dp.run(0, raw(eth() / IP() / UDP()))
    # PF_MAX_PIPE_DEPTH pipes are walked: every one of them hit its entry
    assert (ret, v.drop_reason, v.hops) == (XDP_DROP, lib_.PF_DROP_DEPTH, 8)
    assert [dp.entry_counters(ids[p])[0][0] for p in range(1, 9)] == [1] * 8
    # the pipes past the blocks: walk from the last ones
    dp.pipe(npipes - 1, lib_.PF_PIPE_BASIC, [dp.fields(port=0xFFFFFFFF)], fwd_miss=(lib_.PF_FWD_DROP, 0),
            root=True)
    ret, v, _ = dp.run(0, raw(eth() / IP() / UDP()))
    assert (ret, v.out_port, v.entry_id, v.hops) == (XDP_REDIRECT, 1, ids[npipes], 2)


def test_restart_readopts_entries_of_every_table(veth_ns):
    name = veth_ns["ns"]
    keep = [ffi.new("char[]", s.encode()) for s in ("ebpf", name, bpf_object_dir())]

    def open_inst(fresh):
        opts = ffi.new("struct pf_instance_opts *")
        opts.backend, opts.name, opts.obj_dir = keep
        opts.max_entries = 1024
        opts.flags = lib.PF_INST_FRESH if fresh else 0
        out = ffi.new("pf_instance **")
        call(lib.pf_instance_open, opts, out)
        return out[0]

    from .conftest import Datapath

    dp = Datapath.__new__(Datapath)
    dp.ffi, dp.lib, dp.call = ffi, lib, call
    dp.inst = open_inst(True)
    try:
        dp.port(0, veth_ns["a"])
        dp.port(1, veth_ns["c"])
        dp.pipe(1, lib.PF_PIPE_CONTROL, [dp.fields(port=0xFFFFFFFF)], fwd_miss=(lib.PF_FWD_DROP, 0), root=True)
        by_port = dp.entry(1, dp.fields(port=0), fwd=(lib.PF_FWD_PIPE, 2))
        dp.pipe(2, lib.PF_PIPE_CONTROL, [five_tuple(dp), wide(dp)], fwd_miss=(lib.PF_FWD_DROP, 0))
        packed = dp.entry(2, dp.fields(ip_proto=17, ipv4_src=_ip4("10.0.0.1"), ipv4_dst=_ip4("10.0.0.2"),
                                       l4_dport=_port16(53)), fwd=(lib.PF_FWD_PORT, 1), mask_idx=0)
        wide_e = dp.entry(2, dp.fields(eth_dst=_mac(MAC_B), eth_src=_mac(MAC_A), ipv4_src=_ip4("10.0.0.1"),
                                       ipv4_dst=_ip4("10.0.0.3")), fwd=(lib.PF_FWD_PORT, 0), mask_idx=1)
        before = {i: (e.mask_idx, bytes(ffi.buffer(ffi.addressof(e, "match")))) for i, e in _list(dp, 0xFFFFFFFF).items()}
        lib.pf_instance_close(dp.inst)

        dp.inst = open_inst(False)
        after = {i: (e.mask_idx, bytes(ffi.buffer(ffi.addressof(e, "match")))) for i, e in _list(dp, 0xFFFFFFFF).items()}
        assert after == before and set(after) == {by_port, packed, wide_e}

        def frame(dst):
            return raw(Ether(src=MAC_A, dst=MAC_B) / IP(src="10.0.0.1", dst=dst) / UDP(dport=53))

        assert dp.run(0, frame("10.0.0.2"))[1].entry_id == packed
        assert dp.run(0, frame("10.0.0.3"))[1].entry_id == wide_e
        # a new port-only pipe does not take the block the adopted one owns
        dp.pipe(3, lib.PF_PIPE_BASIC, [dp.fields(port=0xFFFFFFFF)], fwd_miss=(lib.PF_FWD_DROP, 0))
        third = dp.entry(3, dp.fields(port=0), fwd=(lib.PF_FWD_KERNEL, 0))
        assert dp.run(0, frame("10.0.0.2"))[1].entry_id == packed
        # re-adopted entries are removed from the table they are in
        for eid in (by_port, packed, wide_e, third):
            call(lib.pf_entry_del, dp.inst, eid)
        ret, v, _ = dp.run(0, frame("10.0.0.2"))
        assert (ret, v.last_pipe, v.entry_id) == (XDP_DROP, 1, 0xFFFFFFFF)
    finally:
        call(lib.pf_instance_destroy, dp.inst)
        lib.pf_instance_close(dp.inst)
