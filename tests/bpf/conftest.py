"""Fixtures of the bpf tier: a namespace with veth ports, and a datapath
programmed directly through the C API (cffi structs), run with BPF_PROG_RUN."""
from __future__ import annotations

import subprocess
import uuid

import pytest

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@pytest.fixture
def veth_ns():
    """A fresh namespace holding two veth pairs (a<->b, c<->d); the test runs inside it."""
    from pyroute2 import netns

    name = f"pfe{uuid.uuid4().hex[:6]}"
    _ip("netns", "add", name)
    try:
        for x, y in (("a", "b"), ("c", "d")):
            _ip("-n", name, "link", "add", name + x, "type", "veth", "peer", "name", name + y)
            _ip("-n", name, "link", "set", name + x, "up")
            _ip("-n", name, "link", "set", name + y, "up")
        netns.pushns(name)
        try:
            yield {"ns": name, "a": name + "a", "b": name + "b", "c": name + "c", "d": name + "d"}
        finally:
            netns.popns()
    finally:
        _ip("netns", "del", name, check=False)


class Datapath:
    """One ebpf instance (nothing pinned), programmed with raw C API structs."""

    def __init__(self, name: str, max_entries: int = 4096):
        from pyflow.native import bpf_object_dir, call, ffi, lib

        self.ffi, self.lib, self.call = ffi, lib, call
        self._keep = [ffi.new("char[]", s.encode()) for s in ("ebpf", name, bpf_object_dir())]
        opts = ffi.new("struct pf_instance_opts *")
        opts.backend, opts.name, opts.obj_dir = self._keep
        opts.max_entries = max_entries
        opts.flags = lib.PF_INST_NO_PIN
        out = ffi.new("pf_instance **")
        call(lib.pf_instance_open, opts, out)
        self.inst = out[0]

    def close(self):
        if self.inst is not None:
            self.lib.pf_instance_close(self.inst)
            self.inst = None

    def port(self, port_id: int, ifname: str, egress_pipe: int | None = None):
        p = self.ffi.new("struct pf_port *")
        if egress_pipe is not None:
            p.flags = self.lib.PF_PORT_EGRESS_PIPE
            p.egress_pipe = egress_pipe
        self.call(self.lib.pf_port_set, self.inst, port_id, ifname.encode(), p)

    def pipe(self, pipe_id: int, ptype: int = 0, masks=(), fwd=(0, 0), fwd_miss=(4, 0), lpm_field=0, root=False,
             domain=0, nbuckets=0):
        p = self.ffi.new("struct pf_pipe *")
        p.type = ptype
        p.nbuckets = nbuckets
        p.domain = domain
        p.fwd.type, p.fwd.target = fwd
        p.fwd_miss.type, p.fwd_miss.target = fwd_miss
        p.lpm_field = lpm_field
        arr = self.ffi.new("struct pf_fields[]", max(1, len(masks)))
        for i, m in enumerate(masks):
            arr[i] = m[0]
        self.call(self.lib.pf_pipe_set, self.inst, pipe_id, p, arr, len(masks))
        if root:
            self.call(self.lib.pf_root_set, self.inst, pipe_id)

    def fields(self, **values):
        f = self.ffi.new("struct pf_fields *")
        for k, v in values.items():
            if isinstance(v, (bytes, bytearray)):
                self.ffi.memmove(getattr(f, k), v, len(v))
            else:
                setattr(f, k, v)
        return f

    def entry(self, pipe_id: int, match=None, fwd=(0, 0), mask_idx=0, prefixlen=0, priority=0, **act):
        e = self.ffi.new("struct pf_entry *")
        e.fwd.type, e.fwd.target = fwd
        e.priority = priority
        for k, v in act.items():
            if isinstance(v, (bytes, bytearray)):
                self.ffi.memmove(getattr(e.act, k), v, len(v))
            elif isinstance(v, (list, tuple)):
                for i, x in enumerate(v):
                    getattr(e.act, k)[i] = x
            else:
                setattr(e.act, k, v)
        m = match if match is not None else self.fields()
        self.call(self.lib.pf_entry_add, self.inst, pipe_id, mask_idx, prefixlen, m, e)
        return e.id

    def run(self, port: int, frame: bytes):
        """Returns (xdp action, verdict struct, frame after the program)."""
        out = self.ffi.new("char[]", len(frame) + 512)
        res = self.ffi.new("struct pf_test_result *")
        self.call(self.lib.pf_test_run, self.inst, port, frame, len(frame), out, len(frame) + 512, res)
        return res.retval, res.verdict, bytes(self.ffi.buffer(out, res.out_len))

    def port_counters(self, port: int):
        c = self.ffi.new("struct pf_port_counter *")
        self.call(self.lib.pf_counters_port, self.inst, port, c)
        return c

    def pipe_counters(self, pipe: int):
        c = self.ffi.new("struct pf_pipe_counter *")
        self.call(self.lib.pf_counters_pipe, self.inst, pipe, c)
        return c

    def entry_counters(self, *ids):
        arr = self.ffi.new("uint32_t[]", list(ids))
        out = self.ffi.new("struct pf_counter[]", len(ids))
        self.call(self.lib.pf_counters_entries, self.inst, arr, len(ids), out)
        return [(out[i].packets, out[i].bytes) for i in range(len(ids))]


@pytest.fixture
def dp(veth_ns):
    """A datapath with port 0 on veth a and port 1 on veth c."""
    d = Datapath(veth_ns["ns"])
    d.port(0, veth_ns["a"])
    d.port(1, veth_ns["c"])
    d.ifnames = {0: veth_ns["a"], 1: veth_ns["c"]}
    yield d
    d.close()
