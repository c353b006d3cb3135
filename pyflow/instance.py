"""A small Pythonic wrapper over the pf_* C API: one opened datapath instance."""
from __future__ import annotations

from .native import call, ffi, lib

XDP_MODES = {"auto": lib.PF_XDP_AUTO, "driver": lib.PF_XDP_DRIVER, "native": lib.PF_XDP_DRIVER,
             "generic": lib.PF_XDP_GENERIC, "skb": lib.PF_XDP_GENERIC, "hw": lib.PF_XDP_HW,
             "offload": lib.PF_XDP_HW}
XDP_MODE_NAMES = {lib.PF_XDP_DRIVER: "native", lib.PF_XDP_GENERIC: "generic", lib.PF_XDP_HW: "offload"}
VERDICTS = {lib.PF_VERDICT_TX: "tx", lib.PF_VERDICT_DROP: "drop", lib.PF_VERDICT_MISS: "miss",
            lib.PF_VERDICT_PASS: "pass", lib.PF_VERDICT_REPLICATE: "replicate"}
# the counters of struct pf_miss_stats, in the header's order (ring_drops & co. included); the
# queue depth gauge and the latency histogram are read by miss_timing
MISS_TIMING = ("queue_depth", "install_latency_sum_ns", "install_latency_buckets")
MISS_STATS = tuple(name for name, _ in ffi.typeof("struct pf_miss_stats").fields if name not in MISS_TIMING)
# upper bounds of the install latency buckets in seconds (1 us << i); the last bucket is +Inf
MISS_LATENCY_BOUNDS = tuple((1000 << i) / 1e9 for i in range(lib.PF_MISS_LATENCY_BUCKETS - 1))


def _ptr(value, ctype: str):
    """Accept a cdata pointer or a struct value; return a pointer for the C call."""
    if isinstance(value, ffi.CData) and ffi.typeof(value).kind == "pointer":
        return value
    return ffi.new(ctype + " *", value)


class Instance:
    """An opened pf_instance. Use Instance.open(...) and close() (or a with block)."""

    def __init__(self, backend: str, name: str, *, pin_root: str | None = None, obj_dir: str | None = None,
                 xdp_mode: str = "auto", max_entries: int = 0, eal_args: list[str] | None = None,
                 fresh: bool = False, no_pin: bool = False, miss_threads: int = 0, keep_datapath: bool = False,
                 dry: bool = False):
        """Open instance `name` on `backend` (pf_instance_open); close() releases it."""
        from .native import bpf_object_dir

        self._handle = None
        self.backend = backend
        self.name = name
        if xdp_mode not in XDP_MODES:
            raise ValueError(f"xdp mode {xdp_mode!r}: expected one of {', '.join(XDP_MODES)}")
        keep = []   # C strings must outlive the call

        def cstr(text):
            if text is None:
                return ffi.NULL
            buf = ffi.new("char[]", text.encode())
            keep.append(buf)
            return buf

        opts = ffi.new("struct pf_instance_opts *")
        opts.backend = cstr(backend)
        opts.name = cstr(name)
        opts.pin_root = cstr(pin_root)
        opts.obj_dir = cstr(obj_dir or bpf_object_dir())
        opts.xdp_mode = XDP_MODES[xdp_mode]
        opts.max_entries = max_entries
        if eal_args is not None:
            argv = ffi.new("char *[]", [cstr(a) for a in eal_args] + [ffi.NULL])
            keep.append(argv)
            opts.eal_argc = len(eal_args)
            opts.eal_argv = argv
        opts.flags = ((lib.PF_INST_FRESH if fresh else 0) | (lib.PF_INST_NO_PIN if no_pin else 0)
                      | (lib.PF_INST_KEEP_DATAPATH if keep_datapath else 0) | (lib.PF_INST_DRY if dry else 0))
        opts.miss_threads = miss_threads
        out = ffi.new("pf_instance **")
        call(lib.pf_instance_open, opts, out)
        self._handle = out[0]

    @classmethod
    def open(cls, backend: str, name: str, **opts) -> "Instance":
        return cls(backend, name, **opts)

    def __del__(self):
        self.close()

    @property
    def handle(self):
        if self._handle is None:
            raise ValueError(f"instance {self.name!r} is closed")
        return self._handle

    # lifecycle
    def info(self) -> dict:
        info = ffi.new("struct pf_instance_info *")
        call(lib.pf_instance_info_get, self.handle, info)
        return {"adopted": bool(info.adopted), "xdp_mode": info.xdp_mode,
                "mode_reason": ffi.string(info.mode_reason).decode(errors="replace"),
                "port_xdp_modes": {i: XDP_MODE_NAMES[m] for i, m in enumerate(info.port_xdp_mode) if m}}

    def start(self) -> None:
        call(lib.pf_instance_start, self.handle)

    def stop(self) -> None:
        call(lib.pf_instance_stop, self.handle)

    def destroy(self) -> None:
        call(lib.pf_instance_destroy, self.handle)

    def close(self) -> None:
        if self._handle is not None:
            lib.pf_instance_close(self._handle)
            self._handle = None

    def __enter__(self) -> "Instance":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # programming
    def port_set(self, port_id: int, binding: str | None, port) -> None:
        call(lib.pf_port_set, self.handle, port_id, binding.encode() if binding else ffi.NULL,
             _ptr(port, "struct pf_port"))

    def pipe_set(self, pipe_id: int, pipe, masks, nmasks: int | None = None) -> None:
        if isinstance(masks, (list, tuple)):
            array = ffi.new("struct pf_fields[]", len(masks))
            for i, m in enumerate(masks):
                array[i] = m[0] if ffi.typeof(m).kind == "pointer" else m
            masks, nmasks = array, len(masks)
        call(lib.pf_pipe_set, self.handle, pipe_id, _ptr(pipe, "struct pf_pipe"), masks,
             nmasks if nmasks is not None else len(masks))

    def pipe_name_set(self, pipe_id: int, name: str) -> None:
        call(lib.pf_pipe_name_set, self.handle, pipe_id, name.encode())

    def describe(self) -> str:
        """What the backend created, as JSON text (doca: the DOCA Flow pipe graph)."""
        needed = ffi.new("uint32_t *")
        size = 1 << 16
        while True:
            buf = ffi.new("char[]", size)
            err = ffi.new("struct pf_error *")
            if lib.pf_instance_describe(self.handle, buf, size, needed, err) == 0:
                return ffi.string(buf).decode()
            if needed[0] <= size:
                call(lib.pf_instance_describe, self.handle, buf, size, needed)   # raises with the message
            size = needed[0]

    def root_set(self, pipe_id: int) -> None:
        call(lib.pf_root_set, self.handle, pipe_id)

    def session_set(self, session_id: int, session) -> None:
        call(lib.pf_session_set, self.handle, session_id, _ptr(session, "struct pf_session"))

    def entry_add(self, pipe_id: int, mask_idx: int, prefixlen: int, match, entry) -> int:
        """Add an entry; returns the id the backend gave it (also written into entry.id)."""
        entry = _ptr(entry, "struct pf_entry")
        call(lib.pf_entry_add, self.handle, pipe_id, mask_idx, prefixlen, _ptr(match, "struct pf_fields"), entry)
        return entry.id

    def entry_replace(self, entry_id: int, pipe_id: int, mask_idx: int, prefixlen: int, match, entry) -> None:
        """Change entry_id in place: a new match and/or actions, the same id and counters."""
        call(lib.pf_entry_replace, self.handle, entry_id, pipe_id, mask_idx, prefixlen,
             _ptr(match, "struct pf_fields"), _ptr(entry, "struct pf_entry"))

    def entry_add_batch(self, entries) -> list[int]:
        """Add many entries with few map writes (pf_entry_add_batch).

        `entries`: an iterable of (pipe_id, mask_idx, prefixlen, match, entry), match a struct pf_fields and
        entry a struct pf_entry (cdata or pointer). Returns the ids, in order. Entries are added in order; on a
        failure the ones before it stay added, NativeError says "entry I of N: ..." and carries
        `batch_results`, (result, id) per entry (result 0, a negative errno, or -ECANCELED when not
        attempted), and `batch_added`, so a caller can take out exactly what was added.
        """
        items = list(entries)
        if not items:
            return []
        reqs = ffi.new("struct pf_entry_req[]", len(items))
        for req, (pipe_id, mask_idx, prefixlen, match, entry) in zip(reqs, items):
            req.pipe, req.mask_idx, req.prefixlen = pipe_id, mask_idx, prefixlen
            req.match = match[0] if ffi.typeof(match).kind == "pointer" else match
            req.entry = entry[0] if ffi.typeof(entry).kind == "pointer" else entry
        added = ffi.new("uint32_t *")
        try:
            call(lib.pf_entry_add_batch, self.handle, reqs, len(items), added)
        except Exception as exc:
            exc.batch_results = [(req.result, req.entry.id) for req in reqs]
            exc.batch_added = added[0]
            raise
        return [reqs[i].entry.id for i in range(len(items))]

    def entry_del(self, entry_id: int) -> None:
        call(lib.pf_entry_del, self.handle, entry_id)

    def entry_list(self, pipe_id: int, max_entries: int | None = None) -> list:
        """struct pf_entry_info values of the pipe's entries (cdata, copied); all of them unless max_entries."""
        cap = max_entries or 1024
        while True:
            out = ffi.new("struct pf_entry_info[]", cap)
            count = ffi.new("uint32_t *")
            call(lib.pf_entry_list, self.handle, pipe_id, out, cap, count)
            if max_entries or count[0] < cap:
                break
            cap *= 4
        return [ffi.new("struct pf_entry_info *", out[i]) for i in range(min(count[0], cap))]

    def learn_set(self, policy) -> None:
        call(lib.pf_learn_set, self.handle, _ptr(policy, "struct pf_learn"))

    # counters
    def counters_entries(self, ids: list[int]) -> dict[int, tuple[int, int]]:
        """entry id -> (packets, bytes)."""
        if not ids:
            return {}
        c_ids = ffi.new("uint32_t[]", list(ids))
        out = ffi.new("struct pf_counter[]", len(ids))
        call(lib.pf_counters_entries, self.handle, c_ids, len(ids), out)
        return {eid: (out[i].packets, out[i].bytes) for i, eid in enumerate(ids)}

    def counters_pipe(self, pipe_id: int) -> dict[str, int]:
        out = ffi.new("struct pf_pipe_counter *")
        call(lib.pf_counters_pipe, self.handle, pipe_id, out)
        return {"hits": out.hits, "misses": out.misses}

    def counters_port(self, port_id: int) -> dict:
        out = ffi.new("struct pf_port_counter *")
        call(lib.pf_counters_port, self.handle, port_id, out)
        return {"rx_packets": out.rx_packets, "rx_bytes": out.rx_bytes, "tx_packets": out.tx_packets,
                "tx_bytes": out.tx_bytes, "drops": [out.drops[i] for i in range(lib.PF_DROP_MAX)]}

    def miss_stats(self) -> dict[str, int]:
        out = ffi.new("struct pf_miss_stats *")
        call(lib.pf_miss_stats_get, self.handle, out)
        return {name: getattr(out, name) for name in MISS_STATS}

    def pipe_offloaded(self, pipe_id: int) -> bool:
        """True when the pipe runs in the NIC (dpdk rte_flow rules, doca), False in software (ebpf: XDP)."""
        out = ffi.new("uint32_t *")
        call(lib.pf_pipe_offload_get, self.handle, pipe_id, out)
        return bool(out[0])

    def entries_offloaded(self, entry_ids: list[int]) -> dict[int, bool]:
        """Entry id -> True when it has its rule in the NIC on every port it belongs on."""
        if not entry_ids:
            return {}
        ids = ffi.new("uint32_t[]", entry_ids)
        out = ffi.new("uint8_t[]", len(entry_ids))
        call(lib.pf_entry_offload_get, self.handle, ids, len(entry_ids), out)
        return {eid: bool(out[i]) for i, eid in enumerate(entry_ids)}

    def miss_timing(self) -> dict:
        """The miss handler's queue depth now and its install latency histogram (per bucket, not cumulative)."""
        out = ffi.new("struct pf_miss_stats *")
        call(lib.pf_miss_stats_get, self.handle, out)
        return {"queue_depth": out.queue_depth, "install_latency_sum_ns": out.install_latency_sum_ns,
                "install_latency_buckets": list(out.install_latency_buckets)}

    # one frame through the datapath
    def test_run(self, in_port: int, frame: bytes, out_cap: int = 2048):
        """Run frame as if received on in_port; returns (verdict cdata copy, out_frame bytes)."""
        out = ffi.new("uint8_t[]", out_cap)
        res = ffi.new("struct pf_test_result *")
        call(lib.pf_test_run, self.handle, in_port, frame, len(frame), out, out_cap, res)
        verdict = ffi.new("struct pf_verdict *", res.verdict)
        return verdict, bytes(ffi.buffer(out, min(res.out_len, out_cap)))


    def trace_run(self, in_port: int, frame: bytes, out_cap: int = 9216):
        """pf_trace_run: (verdict, out frame, struct pf_trace copy); counts nothing, learns nothing."""
        out = ffi.new("uint8_t[]", out_cap)
        res = ffi.new("struct pf_test_result *")
        trace = ffi.new("struct pf_trace *")
        call(lib.pf_trace_run, self.handle, in_port, frame, len(frame), out, out_cap, res, trace)
        verdict = ffi.new("struct pf_verdict *", res.verdict)
        return verdict, bytes(ffi.buffer(out, min(res.out_len, out_cap))), trace

    def dscp_tc_set(self, mapping: dict[int, int]) -> None:
        """DSCP -> MPLS TC for labels pushed with "tc": "dscp"; unmapped DSCPs keep the class selector."""
        table = ffi.new("uint8_t[64]", [mapping.get(d, 0xFF) for d in range(64)])
        call(lib.pf_dscp_tc_set, self.handle, table)

    def counters_dpi(self) -> dict[str, dict[str, int]]:
        """MPEG-TS classes seen and dropped: {"frames": {class: n}, "dropped": {class: n}}."""
        out = ffi.new("struct pf_dpi_counter *")
        call(lib.pf_counters_dpi, self.handle, out)
        return {k: {c: getattr(out, k)[i] for i, c in enumerate(DPI_CLASSES)} for k in ("frames", "dropped")}


DPI_CLASSES = ("none", "reference", "non_reference", "psi")   # index = enum pf_mpegts_frame


def verdict_kind(verdict) -> str:
    return VERDICTS.get(verdict.kind, str(verdict.kind))
