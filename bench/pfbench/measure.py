"""One throughput measurement: generator for a fixed time, sink delta over the generator's run."""
from __future__ import annotations

import time

from .traffic import FLOW_DST, FLOW_SRC_BASE, Generator, Sink, udp_frame
from .lab import GEN_IF

SETTLE_S = 0.05   # frames still in flight (another process's queue) when the generator stops


def throughput(lab, system, wire_size: int, nflows: int, duration: float, batch: int = 64,
               warmup: float = 0.2, src_base: str = FLOW_SRC_BASE) -> dict:
    gen, sink = Generator(lab), Sink(lab)
    frame = udp_frame(system.dst_mac(lab), lab.mac[GEN_IF], src_base, FLOW_DST, wire_size)
    sink.configure(FLOW_DST)
    if warmup:
        gen.send(frame, duration=warmup, batch=batch, nflows=nflows, src_base=src_base)
        time.sleep(SETTLE_S)
    before = sink.read()
    sent = gen.send(frame, duration=duration, batch=batch, nflows=nflows, src_base=src_base)
    time.sleep(SETTLE_S)
    after = sink.read()
    wall_seconds = sent["elapsed_ns"] / 1e9
    run_seconds = sent.get("run_ns", 0) / 1e9
    # A system that forwards in the generator's own softirq is timed by the kernel's clock of the frames:
    # the wall clock also holds the idle RCU waits of every BPF_PROG_RUN call (see pfbtool gen), which
    # would add a fixed cost per call and make a faster system look closer to a slower one. A system
    # that works on another core keeps forwarding during those gaps, so it is timed by the wall clock.
    same_core = getattr(system, "forwards_in_generator_softirq", True)
    seconds = run_seconds if same_core and run_seconds > 0 else wall_seconds
    received = after["packets"] - before["packets"]
    return {
        "pps": received / seconds,
        "offered_pps": sent["sent"] / seconds,
        "received": received,
        "sent": sent["sent"],
        "rewritten_frac": (after["rewritten"] - before["rewritten"]) / received if received else 0.0,
        "gbps": (after["bytes"] - before["bytes"]) * 8 / seconds / 1e9,
        "seconds": seconds,
        "clock": "frames" if seconds is run_seconds else "wall",
        "wall_seconds": wall_seconds,
        "run_seconds": run_seconds,
        "calls": sent.get("calls"),
        "pps_wall": received / wall_seconds if wall_seconds else None,
    }
