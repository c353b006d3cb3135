"""`pyflow capture`: frames at pipe points of a running instance, into pcap / pcapng.

The running `pyflow run` process owns the datapath, so the capture runs there: the control API
starts it (capture_start), the C core's capture thread reads the datapath's perf buffer and
writes the file, and the CLI polls capture_stats until the count or duration is reached (or
stops it on Ctrl-C). Python touches no frame.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

from .errors import ConfigError, UsageError

POINTS = {"ingress": "PF_CAP_INGRESS", "hit": "PF_CAP_HIT", "miss": "PF_CAP_MISS", "egress": "PF_CAP_EGRESS",
          "drop": "PF_CAP_DROP"}


def parse_points(points: list[str], pipes: dict[str, int]) -> tuple[int, int]:
    """['ingress', 'hit:l3', ...] -> (point bits, pipe id or PF_CAPTURE_ANY)."""
    from .native import lib

    bits, pipe = 0, None
    for p in points:
        name, _, target = p.partition(":")
        if name not in POINTS:
            raise UsageError(f"--at {p}: expected ingress, egress, drop, hit[:PIPE] or miss[:PIPE]")
        if target and name not in ("hit", "miss"):
            raise UsageError(f"--at {p}: only hit and miss take a pipe")
        if target:
            if target not in pipes:
                from .config.errors_util import suggest
                raise UsageError(f"--at {p}: no pipe {target!r}{suggest(target, pipes)} (pipes: {', '.join(pipes)})")
            if pipe is not None and pipe != pipes[target]:
                raise UsageError(f"--at {p}: one capture filters one pipe (already {pipe})")
            pipe = pipes[target]
        bits |= getattr(lib, POINTS[name])
    return bits, lib.PF_CAPTURE_ANY if pipe is None else pipe


# -- control API ops (run in the pyflow run process) ----------------------------------------------

def op_capture_start(ctl, args: dict) -> dict:
    from .native import call, ffi, lib

    if ctl.opts.backend != "ebpf":
        raise UsageError(f"capture: backend {ctl.opts.backend} cannot capture yet (ebpf only)")
    path = args.get("path")
    if not isinstance(path, str) or not os.path.isabs(path):
        raise UsageError("capture: expected an absolute output path")
    pipes = {p.name: p.id for p in ctl.program.pipes}
    bits, pipe = parse_points(list(args.get("points") or ["ingress"]), pipes)
    entry = args.get("entry")
    entry_id = lib.PF_CAPTURE_ANY
    if entry is not None:
        ids = dict(ctl.program.entry_ids)
        ids.update({n: eid for n, (_p, eid) in ctl.runtime_entries.items()})
        if entry not in ids:
            raise ConfigError("--entry", f"no entry {entry!r} in instance {ctl.instance_name!r}")
        entry_id = ids[entry]
    snaplen = int(args.get("snaplen") or 2048)
    if not 64 <= snaplen <= 65535:
        raise UsageError(f"--snaplen {snaplen}: expected 64..65535")
    fmt = {"pcap": lib.PF_CAPTURE_PCAP, "pcapng": lib.PF_CAPTURE_PCAPNG}.get(args.get("format", "pcapng"))
    if fmt is None:
        raise UsageError("--format: expected pcap or pcapng")
    count, duration = args.get("count") or 0, args.get("duration") or 0
    if count < 0 or duration < 0:
        raise UsageError("capture: --count and --duration must not be negative")
    cfg = ffi.new("struct pf_capture_cfg *", {"points": bits, "pipe": pipe, "entry": entry_id, "snaplen": snaplen})
    call(lib.pf_capture_start, ctl.instance.handle, cfg, path.encode(), fmt, int(count), int(duration * 1000))
    return {"path": path, "points": bits, "pipe": pipe, "entry": entry_id,
            "names": {"pipes": {str(v): k for k, v in pipes.items()},
                      "ports": {str(p.id): p.name for p in ctl.program.ports}}}


def _stats(ctl, fn) -> dict:
    from .native import call, ffi

    st = ffi.new("struct pf_capture_stats *")
    call(fn, ctl.instance.handle, st)
    return {"frames": st.frames, "bytes": st.bytes, "lost": st.lost, "running": bool(st.running)}


def op_capture_stats(ctl, args: dict) -> dict:
    from .native import lib

    return _stats(ctl, lib.pf_capture_stats_get)


def op_capture_stop(ctl, args: dict) -> dict:
    from .native import lib

    return _stats(ctl, lib.pf_capture_stop)


# -- the CLI side ---------------------------------------------------------------------------------

def capture_remote(instance: str, path: str, points: list[str], entry: str | None, count: int | None,
                   duration: float | None, snaplen: int, fmt: str) -> int:
    from .control import ControlClient

    if count is not None and count <= 0:
        raise UsageError(f"--count {count}: expected a positive number")
    if duration is not None and duration <= 0:
        raise UsageError(f"--duration {duration}: expected a positive number of seconds")
    to_stdout = path == "-"
    if to_stdout:
        fd, target = tempfile.mkstemp(prefix="pyflow-capture-", suffix="." + fmt, dir="/run/pyflow")
        os.close(fd)
    else:
        target = os.path.abspath(path)
        parent = os.path.dirname(target)
        if not os.path.isdir(parent):
            raise UsageError(f"-w {path}: directory {parent} does not exist")
    client = ControlClient(instance)
    try:
        client.request("capture_start", path=target, points=points, entry=entry, count=count or 0,
                       duration=duration or 0, snaplen=snaplen, format=fmt)
        try:
            while True:
                st = client.request("capture_stats")
                if not st["running"]:
                    break
                time.sleep(0.1)
        except KeyboardInterrupt:
            pass
        st = client.request("capture_stop")
        if st["lost"]:
            print(f"capture: {st['lost']} frame(s) lost (the perf buffer was full)", file=sys.stderr)
        if to_stdout:
            with open(target, "rb") as f:
                shutil.copyfileobj(f, sys.stdout.buffer)
            sys.stdout.flush()
        return st["frames"]
    finally:
        if to_stdout:
            try:
                os.unlink(target)
            except FileNotFoundError:
                pass
