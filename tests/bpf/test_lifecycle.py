"""Pinned state survives a restart (re-adopted: entries, ids, counters); fresh
wipes it; destroy removes it; start attaches XDP to every port and stop detaches."""
from __future__ import annotations

import os
import subprocess

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


def _program(inst, ifname):
    call(lib.pf_port_set, inst, 0, ifname.encode(), ffi.new("struct pf_port *"))
    pipe = ffi.new("struct pf_pipe *", {"type": lib.PF_PIPE_BASIC, "fwd_miss": {"type": lib.PF_FWD_DROP}})
    mask = ffi.new("struct pf_fields[1]", [{"l4_dport": 0xFFFF}])
    call(lib.pf_pipe_set, inst, 3, pipe, mask, 1)
    call(lib.pf_root_set, inst, 3)
    ids = []
    for port in (53, 80, 443):
        e = ffi.new("struct pf_entry *", {"fwd": {"type": lib.PF_FWD_PORT, "target": 0}})
        m = ffi.new("struct pf_fields *", {"l4_dport": int.from_bytes(port.to_bytes(2, "big"), "little")})
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
