"""Runs one pyflow instance inside the DUT namespace for the benchmark and takes orders on stdin.

Started by the suite as  nsenter --net=<dut ns> <venv python> pyflow_dut.py ARGS_JSON ; speaks JSON lines:
  -> {"ready": true, "instance": ..., "pipes": {...}}      (or {"error": ...} and exit)
  <- {"op": "install", "count": N, "src_base": "A.B.C.D"[, "batch": B]}
                                                            -> {"installed": n, "seconds": s, "errors": e}
     (batch: B entries per pf_entry_add_batch call, each an EntryBatch filled a column at a time)
  <- {"op": "count"}                                        -> {"entries": n}   (h2n, read back from the backend)
  <- {"op": "miss_stats"}                                   -> {...}
  <- {"op": "capture", "points": [...], "path": P}          -> capture running until quit
  <- {"op": "quit"}                                         (instance destroyed: programs detached, pins removed)
It uses the same pieces as `pyflow run` (config loader, compiler, Controller with its control API server);
only the instance is opened here so the entry tables can be sized for the scale runs.
"""
from __future__ import annotations

import array
import ipaddress
import json
import sys
import time
import traceback


def reply(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def learned_resubmit_entry(ffi, lib, src_off: int, src: int):
    """The entry the resubmit example's lcore creates for a new source: match ipv4.src, set ipv4.dst = src + 1.1.1.1."""
    match = ffi.new("struct pf_fields *")
    entry = ffi.new("struct pf_entry *")
    ffi.buffer(match)[src_off:src_off + 4] = src.to_bytes(4, "big")
    entry.act.flags = lib.PF_ACT_SET_IPV4_DST
    entry.act.ipv4_dst = int.from_bytes(((src + 0x01010101) & 0xFFFFFFFF).to_bytes(4, "big"), sys.byteorder)
    entry.fwd.type = lib.PF_FWD_DEFAULT
    return match, entry


def packed_resubmit_batch(pipe_id: int, first: int, count: int, ffi, lib):
    """count of those entries from source `first` on, as one EntryBatch: a template request and two
    packed columns (ipv4.src, ipv4.dst in network order), no cffi call per entry."""
    from pyflow.entries import EntryBatch

    template = ffi.new("struct pf_entry *")
    template.act.flags = lib.PF_ACT_SET_IPV4_DST
    template.fwd.type = lib.PF_FWD_DEFAULT
    batch = EntryBatch(count, pipe_id, entry=template)
    src = array.array("I", range(first, first + count))
    dst = array.array("I", [(x + 0x01010101) & 0xFFFFFFFF for x in src])
    if sys.byteorder == "little":
        src.byteswap()
        dst.byteswap()
    batch.set_column("match.ipv4_src", src.tobytes(), 4)
    batch.set_column("entry.act.ipv4_dst", dst.tobytes(), 4)
    return batch


def install(inst, pipe_id: int, cmd: dict, ffi, lib, src_off: int) -> dict:
    """count entries from src_base on: one pf_entry_add each, or `batch` per pf_entry_add_batch call.

    Both ways time the same work: building the requests (in chunks, so 1M entries do not sit in memory
    at once) and the install calls. One by one, each entry is two cffi structs filled field by field;
    batched, the chunk is one EntryBatch filled a column at a time.
    """
    base = int(ipaddress.IPv4Address(cmd["src_base"]))
    count, batch = int(cmd["count"]), int(cmd.get("batch") or 0)
    chunk_size = batch or 4096
    installed = errors = 0
    first_error = None
    t0 = time.perf_counter()
    for start in range(0, count, chunk_size):
        n = min(count, start + chunk_size) - start
        try:
            if batch:
                installed += len(packed_resubmit_batch(pipe_id, base + start, n, ffi, lib).install(inst))
            else:
                for i in range(start, start + n):
                    inst.entry_add(pipe_id, 0, 0, *learned_resubmit_entry(ffi, lib, src_off, base + i))
                    installed += 1
        except Exception as exc:
            errors += 1
            first_error = str(exc)
            break
    return {"installed": installed, "seconds": time.perf_counter() - t0, "errors": errors,
            "first_error": first_error}


def main() -> int:
    args = json.loads(sys.argv[1])
    try:
        from pyflow.controller import Controller, RunOptions, counter_layout
        from pyflow.instance import Instance
        from pyflow.native import ffi, lib

        opts = RunOptions(backend=args.get("backend", "ebpf"), config_path=args["config"], ports=args["ports"],
                          instance=args["instance"], fresh=True, stats_interval=3600)
        ctl = Controller(opts, out=sys.stderr)
        ctl.prepare()
        inst = Instance(backend=opts.backend, name=ctl.instance_name, fresh=True,
                        max_entries=int(args.get("max_entries", 0)))
        ctl.instance = inst
        ctl.program.apply(inst)
        ctl.layout = counter_layout(ctl.instance_name, ctl.cfg, ctl.program)
        ctl.start()
    except Exception as exc:
        reply({"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=3)})
        return 1
    h2n = ctl.program.pipe(args.get("learn_pipe", "h2n"))
    reply({"ready": True, "instance": ctl.instance_name, "pipes": {p.name: p.id for p in ctl.program.pipes},
           "info": inst.info()})
    src_off = ffi.offsetof("struct pf_fields", "ipv4_src")
    try:
        for line in sys.stdin:
            cmd = json.loads(line)
            op = cmd.get("op")
            if op == "quit":
                break
            if op == "miss_stats":
                reply(inst.miss_stats())
            elif op == "install":
                reply(install(inst, h2n.id, cmd, ffi, lib, src_off))
            elif op == "count":
                # what the instance holds, read back from the backend (not the controller's bookkeeping)
                reply({"entries": len(inst.entry_list(h2n.id))})
            elif op == "capture":
                # pyflow capture while the fast path runs, as `pyflow capture` starts it
                from pyflow.capture import op_capture_start
                reply(op_capture_start(ctl, {"path": cmd.get("path", "/dev/null"), "points": cmd["points"],
                                             "snaplen": cmd.get("snaplen", 128), "format": "pcap"}))
            else:
                reply({"error": f"unknown op {op!r}"})
    finally:
        try:
            if ctl.server:
                ctl.server.stop()
            inst.destroy()
        finally:
            inst.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
