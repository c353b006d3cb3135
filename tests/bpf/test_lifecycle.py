"""Pinned state survives a restart (re-adopted: entries, ids, counters); fresh
wipes it; destroy removes it; start attaches XDP to every port and stop detaches."""
from __future__ import annotations

import os
import subprocess

import pytest
from scapy.all import IP, UDP, Ether, raw

from pyflow.native import bpf_object_dir, call, ffi, lib

PIN_ROOT = "/sys/fs/bpf/pyflow"


def _open(name, fresh=False, max_entries=1024):
    keep = [ffi.new("char[]", s.encode()) for s in ("ebpf", name, bpf_object_dir())]
    opts = ffi.new("struct pf_instance_opts *")
    opts.backend, opts.name, opts.obj_dir = keep
    opts.max_entries = max_entries
    opts.flags = lib.PF_INST_FRESH if fresh else 0
    out = ffi.new("pf_instance **")
    call(lib.pf_instance_open, opts, out)
    return out[0]


def _info(inst):
    info = ffi.new("struct pf_instance_info *")
    call(lib.pf_instance_info_get, inst, info)
    return info


def _run(inst, frame):
    out = ffi.new("char[]", 2048)
    res = ffi.new("struct pf_test_result *")
    call(lib.pf_test_run, inst, 0, frame, len(frame), out, 2048, res)
    return res.verdict


def _dport(port):
    """l4.dport as stored in struct pf_fields (network order)."""
    return int.from_bytes(port.to_bytes(2, "big"), "little")


def _program(inst, ifname):
    call(lib.pf_port_set, inst, 0, ifname.encode(), ffi.new("struct pf_port *"))
    pipe = ffi.new("struct pf_pipe *", {"type": lib.PF_PIPE_BASIC, "fwd_miss": {"type": lib.PF_FWD_DROP}})
    mask = ffi.new("struct pf_fields[1]", [{"l4_dport": 0xFFFF}])
    call(lib.pf_pipe_set, inst, 3, pipe, mask, 1)
    call(lib.pf_root_set, inst, 3)
    ids = []
    for port in (53, 80, 443):
        e = ffi.new("struct pf_entry *", {"fwd": {"type": lib.PF_FWD_PORT, "target": 0}})
        m = ffi.new("struct pf_fields *", {"l4_dport": _dport(port)})
        call(lib.pf_entry_add, inst, 3, 0, 0, m, e)
        ids.append(e.id)
    return ids


def _entry_count(inst, eid):
    out = ffi.new("struct pf_counter[1]")
    call(lib.pf_counters_entries, inst, ffi.new("uint32_t[1]", [eid]), 1, out)
    return out[0].packets


def test_restart_readopts_pinned_state(veth_ns):
    name = veth_ns["ns"]
    pin_dir = f"{PIN_ROOT}/{name}"
    frame = raw(Ether() / IP() / UDP(dport=80))
    inst = _open(name, fresh=True)
    try:
        assert _info(inst).adopted == 0
        ids = _program(inst, veth_ns["a"])
        assert _run(inst, frame).entry_id == ids[1]
        assert {"config", "entries", "prog", "port_counters"} <= set(os.listdir(pin_dir))
        lib.pf_instance_close(inst)

        inst = _open(name)
        assert _info(inst).adopted == 1
        assert _entry_count(inst, ids[1]) == 1          # counters survived
        assert _run(inst, frame).entry_id == ids[1]     # entries survived, same id
        assert _entry_count(inst, ids[1]) == 2
        # the allocator was rebuilt: a new entry does not reuse a live id
        e = ffi.new("struct pf_entry *", {"fwd": {"type": lib.PF_FWD_DROP}})
        call(lib.pf_entry_add, inst, 3, 0, 0, ffi.new("struct pf_fields *", {"l4_dport": 1}), e)
        assert e.id not in ids
        lib.pf_instance_close(inst)

        inst = _open(name, fresh=True)
        assert _info(inst).adopted == 0
        call(lib.pf_port_set, inst, 0, veth_ns["a"].encode(), ffi.new("struct pf_port *"))
        assert _run(inst, frame).kind == 0xFFFFFFFF     # no root pipe any more: no verdict (XDP_PASS)
    finally:
        call(lib.pf_instance_destroy, inst)
        lib.pf_instance_close(inst)
    assert not os.path.exists(pin_dir)


def test_start_attaches_and_stop_detaches(veth_ns):
    name = veth_ns["ns"]
    inst = _open(name, fresh=True)
    try:
        _program(inst, veth_ns["a"])
        call(lib.pf_instance_start, inst)
        info = _info(inst)
        assert info.xdp_mode == lib.PF_XDP_DRIVER, ffi.string(info.mode_reason)
        shown = subprocess.run(["ip", "-d", "link", "show", veth_ns["a"]], capture_output=True, text=True).stdout
        assert "xdp" in shown and "pf_xdp_root" in shown
        call(lib.pf_instance_stop, inst)
        shown = subprocess.run(["ip", "-d", "link", "show", veth_ns["a"]], capture_output=True, text=True).stdout
        assert "pf_xdp_root" not in shown
    finally:
        call(lib.pf_instance_destroy, inst)
        lib.pf_instance_close(inst)


# ---- pf_entry_add_batch ---------------------------------------------------------------------

def _batch(inst, dports, pipe=3, fwd_port=0):
    reqs = ffi.new("struct pf_entry_req[]", len(dports))
    for r, (dport, p) in zip(reqs, ((d, pipe) for d in dports)):
        r.pipe = p
        r.match.l4_dport = _dport(dport)
        r.entry.fwd.type = lib.PF_FWD_PORT
        r.entry.fwd.target = fwd_port
    added = ffi.new("uint32_t *")
    err = ffi.new("struct pf_error *")
    ret = lib.pf_entry_add_batch(inst, reqs, len(dports), added, err)
    return ret, added[0], reqs, ffi.string(err.msg).decode()


def _dport_frame(dport):
    return raw(Ether() / IP() / UDP(dport=dport))


def test_entry_add_batch_lands_with_distinct_ids_and_zero_counters(veth_ns):
    name = veth_ns["ns"]
    inst = _open(name, fresh=True, max_entries=512)
    try:
        ids = _program(inst, veth_ns["a"])              # dports 53, 80, 443 one by one
        assert _run(inst, _dport_frame(80)).entry_id == ids[1]
        dports = list(range(1000, 1300))
        ret, added, reqs, msg = _batch(inst, dports)
        assert (ret, added, msg) == (0, 300, "")
        new_ids = [reqs[i].entry.id for i in range(300)]
        assert all(reqs[i].result == 0 for i in range(300))
        assert len(set(new_ids) | set(ids)) == 303
        for dport, eid in ((1000, new_ids[0]), (1150, new_ids[150]), (1299, new_ids[299])):
            assert _run(inst, _dport_frame(dport)).entry_id == eid
            assert _entry_count(inst, eid) == 1
        assert _entry_count(inst, new_ids[1]) == 0
        listed = ffi.new("struct pf_entry_info[]", 512)
        count = ffi.new("uint32_t *")
        call(lib.pf_entry_list, inst, 3, listed, 512, count)
        assert count[0] == 303

        # an existing key (also one repeated inside the batch) is updated in place and keeps its id
        ret, added, reqs, _ = _batch(inst, [80, 2000, 2000], fwd_port=0)
        assert (ret, added) == (0, 3)
        assert reqs[0].entry.id == ids[1] and reqs[1].entry.id == reqs[2].entry.id
        assert _entry_count(inst, ids[1]) == 1          # same entry, its counter kept

        # a deleted entry's id, given out again, starts from zero: fill the table until it wraps
        call(lib.pf_entry_del, inst, ids[1])
        live = 303 + 1 - 1      # 303 entries and 2000, less the deleted one
        ret, added, reqs, msg = _batch(inst, list(range(3000, 3000 + 512 - live)))
        assert (ret, added) == (0, 512 - live), msg
        reused = [reqs[i].entry.id for i in range(added) if reqs[i].entry.id == ids[1]]
        assert reused == [ids[1]]
        assert _entry_count(inst, ids[1]) == 0

        # the table is full now: the error names the entry, the ones before it stay added
        ret, added, reqs, msg = _batch(inst, [1000, 4000, 4001])
        assert ret == -28 and added == 1 and "entry 1 of 3:" in msg and "entry table full" in msg, msg
        assert [reqs[i].result for i in range(3)] == [0, -28, -125]     # ENOSPC, ECANCELED
    finally:
        call(lib.pf_instance_destroy, inst)
        lib.pf_instance_close(inst)


def test_entry_add_batch_stops_at_an_invalid_entry(veth_ns):
    from pyflow.errors import NativeError
    from pyflow.instance import Instance

    inst = Instance("ebpf", veth_ns["ns"], fresh=True, no_pin=True, max_entries=64)
    try:
        _program(inst.handle, veth_ns["a"])
        match = ffi.new("struct pf_fields *", {"l4_dport": _dport(7)})
        entry = ffi.new("struct pf_entry *", {"fwd": {"type": lib.PF_FWD_DROP}})
        bad = ffi.new("struct pf_entry *", {"fwd": {"type": lib.PF_FWD_PORT, "target": 999}})
        with pytest.raises(NativeError, match=r"entry 1 of 3: entry forward: port 999 out of range"):
            inst.entry_add_batch([(3, 0, 0, match, entry), (3, 0, 0, match, bad), (9, 0, 0, match, entry)])
        # entry 0 was added (as a pf_entry_add would have), nothing after the bad one
        assert _run(inst.handle, _dport_frame(7)).kind == lib.PF_VERDICT_DROP
        with pytest.raises(NativeError, match=r"entry 0 of 1: entry for pipe 9: the pipe is not defined"):
            inst.entry_add_batch([(9, 0, 0, match, entry)])
        ids = inst.entry_add_batch([(3, 0, 0, ffi.new("struct pf_fields *", {"l4_dport": _dport(p)}), entry)
                                    for p in (8, 9)])
        assert len(set(ids)) == 2 and inst.entry_add_batch([]) == []
    finally:
        inst.close()
