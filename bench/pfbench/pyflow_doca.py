"""pyflow's doca backend on the DOCA Flow simulator (tests/doca/sim): what pyflow itself costs per DOCA call.

Two measurements, neither of which says anything about BlueField hardware (nothing here has one):
  * part "doca" (in process, no lab): entries installed per second through pf_entry_add -> DOCA Flow
    (doca_flow_pipe_add_entry with DOCA_FLOW_NO_WAIT + doca_flow_entries_process per entry, the path the
    control API takes), and miss -> resubmit latency: a frame of a new flow injected into the simulated
    switch, missed to the RSS queue, learned by the handler thread, installed, resubmitted; timed until
    the handler has resubmitted it (polled, so an upper bound); and learned entries per second for a burst
    of new flows, batched (DOCA_FLOW_WAIT_FOR_BATCH, one doca_flow_entries_process per learner round)
    beside one by one (PYFLOW_DOCA_NO_BATCH=1: one push and one process call per entry), measured
    alternately in the same run;
  * the flow-setup part's "pyflow DOCA (simulator)" row: `pyflow run --backend doca --doca-sim` on the
    lab's DUT veths (the simulator's ports on AF_PACKET), beside the ebpf and dpdk rows.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

from .common import CommandError, debug, log, ns_prefix, percentile
from .lab import DUT_IN, DUT_OUT
from .pyflow_systems import REPO, bench_config, pyflow_problem
from .systems import System


def sim_library() -> str | None:
    if REPO not in sys.path:
        sys.path.append(REPO)     # after site-packages: pyflow itself comes from the install
    try:
        from tests.doca.sim.build import sim_library as build
        return build()
    except Exception as exc:  # noqa: BLE001 - reported as the reason to skip
        log(f"doca: cannot build the DOCA Flow simulator: {exc}")
        return None


def doca_problem() -> str | None:
    lib = sim_library()
    if not lib:
        return "the DOCA Flow simulator (tests/doca/sim) does not build here"
    os.environ["PYFLOW_DOCA_SIM"] = lib
    return pyflow_problem("doca")


def _udp(src: str, dst: str = "20.1.1.100") -> bytes:
    import socket
    import struct

    payload = b"pfbench-doca"
    udp = struct.pack("!HHHH", 1234, 4000, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, socket.inet_aton(src),
                     socket.inet_aton(dst))
    s = sum(struct.unpack("!10H", ip))
    s = (s & 0xFFFF) + (s >> 16)
    ip = ip[:10] + struct.pack("!H", ~s & 0xFFFF) + ip[12:]
    return bytes.fromhex("020000000002020000000001") + b"\x08\x00" + ip + udp


def _src(i: int) -> str:
    return f"10.{(i >> 14) & 255}.{(i >> 7) & 127}.{(i & 127) + 1}"     # unique for i < 2**22, never .0


def measure_install_rate(n: int) -> dict:
    """n entries into the h2n pipe through pf_entry_add on a started doca instance (each one a DOCA add + process)."""
    from pyflow.compiler import compile_program
    from pyflow.config import load_config
    from pyflow.instance import Instance
    from pyflow.native import ffi

    cfg = load_config(bench_config("/tmp", n + 16))
    program = compile_program(cfg, {"uplink": "0", "vf0": "1"})
    h2n = next(p for p in program.pipes if p.name == "h2n")
    with Instance("doca", "pfbdoca", no_pin=True, max_entries=n + 64) as inst:
        program.apply(inst)
        inst.start()
        match = ffi.new("struct pf_fields *")
        entry = ffi.new("struct pf_entry *")
        entry.fwd.type = 1        # PF_FWD_PORT
        entry.fwd.target = 0
        entry.act.flags = 1 << 3  # PF_ACT_SET_IPV4_DST
        t0 = time.perf_counter()
        for i in range(n):
            match.ipv4_src = int.from_bytes(bytes(map(int, _src(i + 1).split("."))), "little")
            entry.act.ipv4_dst = match.ipv4_src
            inst.entry_add(h2n.id, 0, 0, match, entry)
        t1 = time.perf_counter()
    return {"entries": n, "entries_per_s": n / (t1 - t0), "us_per_entry": (t1 - t0) / n * 1e6}


def measure_miss_latency(n: int) -> dict:
    """n new flows one at a time: inject on vf0, wait until the handler resubmitted it; latency per flow."""
    from pyflow.compiler import compile_program
    from pyflow.config import load_config
    from pyflow.instance import Instance

    lib = ctypes.CDLL(os.environ["PYFLOW_DOCA_SIM"])

    class Result(ctypes.Structure):
        _fields_ = [("verdict", ctypes.c_uint32), ("port_id", ctypes.c_uint32), ("queue", ctypes.c_uint32),
                    ("out_len", ctypes.c_uint32), ("mark", ctypes.c_uint32), ("hops", ctypes.c_uint32),
                    ("ctx", ctypes.c_void_p), ("mirrored", ctypes.c_uint32)]

    cfg = load_config(bench_config("/tmp", n + 16))
    program = compile_program(cfg, {"uplink": "0", "vf0": "1"})
    lat = []
    with Instance("doca", "pfbdoca", no_pin=True, max_entries=n + 64) as inst:
        program.apply(inst)
        inst.start()
        res = Result()
        for i in range(n):
            frame = _udp(_src(i + 1))
            want = i + 1
            t0 = time.perf_counter()
            lib.docasim_inject(1, frame, len(frame), 0, None, 0, ctypes.byref(res))
            while inst.miss_stats()["resubmitted"] < want:
                if time.perf_counter() - t0 > 2:
                    raise CommandError(f"doca: flow {i} not resubmitted within 2 s")
            lat.append((time.perf_counter() - t0) * 1e6)
        stats = inst.miss_stats()
        h2n = next(p for p in program.pipes if p.name == "h2n")
        hits = inst.counters_pipe(h2n.id)
    lat.sort()
    return {"flows": n, "installed": stats["installed"], "resubmitted": stats["resubmitted"],
            "h2n": hits, "latency_us": {"p50": percentile(lat, 50), "p99": percentile(lat, 99), "max": lat[-1],
                                        "mean": statistics.fmean(lat)}}


def measure_learn_burst(n: int, batched: bool) -> dict:
    """n new flows queued on the RSS ring at once (the simulator's rx paused), then released: learned entries
    per second until the handler resubmitted all of them, and the DOCA queue calls it took."""
    from pyflow.compiler import compile_program
    from pyflow.config import load_config
    from pyflow.instance import Instance

    lib = ctypes.CDLL(os.environ["PYFLOW_DOCA_SIM"])
    lib.docasim_queue_stats.argtypes = [ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint64)]
    res = (ctypes.c_uint8 * 64)()
    if batched:
        os.environ.pop("PYFLOW_DOCA_NO_BATCH", None)
    else:
        os.environ["PYFLOW_DOCA_NO_BATCH"] = "1"
    cfg = load_config(bench_config("/tmp", n + 16))
    program = compile_program(cfg, {"uplink": "0", "vf0": "1"})
    pushes, calls = ctypes.c_uint64(), ctypes.c_uint64()
    try:
        with Instance("doca", "pfbdoca", no_pin=True, max_entries=n + 64) as inst:
            program.apply(inst)
            inst.start()
            lib.docasim_rx_pause(True)
            for i in range(n):
                frame = _udp(_src(i + 1))
                lib.docasim_inject(1, frame, len(frame), 0, None, 0, ctypes.byref(res))
            lib.docasim_queue_stats(ctypes.byref(pushes), ctypes.byref(calls))
            p0, c0 = pushes.value, calls.value
            t0 = time.perf_counter()
            lib.docasim_rx_pause(False)
            while inst.miss_stats()["resubmitted"] < n:
                if time.perf_counter() - t0 > 30:
                    raise CommandError(f"doca: {n} flows not resubmitted within 30 s")
                time.sleep(0.0002)
            t1 = time.perf_counter()
            lib.docasim_queue_stats(ctypes.byref(pushes), ctypes.byref(calls))
            installed = inst.miss_stats()["installed"]
    finally:
        os.environ.pop("PYFLOW_DOCA_NO_BATCH", None)
    return {"flows": n, "installed": installed, "entries_per_s": n / (t1 - t0),
            "pushes": pushes.value - p0, "process_calls": calls.value - c0}


def run_doca(ctx) -> dict:
    why = doca_problem()
    if why:
        log(f"doca: skipped: {why}")
        return {"skipped": why}
    n = 2000 if ctx is None or not ctx.args.quick else 500
    repeats = 3 if ctx is None else ctx.args.repeats
    installs = [measure_install_rate(n) for _ in range(repeats)]
    miss = [measure_miss_latency(min(n, 1000)) for _ in range(repeats)]
    burst = {"batched": [], "one_by_one": []}
    measure_learn_burst(n, True)         # warm-up, not counted
    for _ in range(repeats):             # alternately, so both see the same machine
        burst["one_by_one"].append(measure_learn_burst(n, False))
        burst["batched"].append(measure_learn_burst(n, True))
    out = {"api": "DOCA Flow simulator (tests/doca/sim), not hardware", "install": installs, "miss": miss,
           "entries_per_s": statistics.median(r["entries_per_s"] for r in installs),
           "us_per_entry": statistics.median(r["us_per_entry"] for r in installs),
           "miss_p50_us": statistics.median(r["latency_us"]["p50"] for r in miss),
           "miss_p99_us": statistics.median(r["latency_us"]["p99"] for r in miss),
           "learn_burst": burst,
           "learn_burst_per_s": {k: statistics.median(r["entries_per_s"] for r in v) for k, v in burst.items()}}
    log(f"doca: {out['entries_per_s']:.0f} entries/s ({out['us_per_entry']:.1f} us each); miss -> resubmit "
        f"p50 {out['miss_p50_us']:.0f} us, p99 {out['miss_p99_us']:.0f} us; learned burst of {n}: "
        f"{out['learn_burst_per_s']['one_by_one']:.0f}/s one by one, {out['learn_burst_per_s']['batched']:.0f}/s "
        f"batched")
    return out


def render_doca(d: dict) -> list[str]:
    lines = ["", "DOCA backend on the DOCA Flow simulator (pyflow's own cost per DOCA call; not hardware)"]
    if d.get("skipped"):
        return lines + [f"  skipped: {d['skipped']}"]
    lines.append(f"  entries installed via pf_entry_add -> doca_flow_pipe_add_entry + entries_process: "
                 f"{d['entries_per_s']:.0f}/s ({d['us_per_entry']:.1f} us per entry)")
    lines.append(f"  miss -> RSS -> learn -> install -> resubmit, one flow at a time: p50 {d['miss_p50_us']:.0f} us, "
                 f"p99 {d['miss_p99_us']:.0f} us")
    if d.get("learn_burst_per_s"):
        b, o = d["learn_burst"]["batched"][0], d["learn_burst"]["one_by_one"][0]
        lines.append(f"  learned burst of {b['flows']} new flows: one by one {d['learn_burst_per_s']['one_by_one']:.0f} "
                     f"entries/s ({o['pushes']} pushes, {o['process_calls']} entries_process), batched with "
                     f"DOCA_FLOW_WAIT_FOR_BATCH {d['learn_burst_per_s']['batched']:.0f} entries/s ({b['pushes']} "
                     f"pushes, {b['process_calls']} entries_process)")
    return lines


class PyflowDocaSetup(System):
    """`pyflow run --backend doca --doca-sim` in the DUT namespace, the simulator's ports on the DUT veths."""

    name = "pyflow-doca-sim"
    label = "pyflow DOCA (simulator)"
    description = ("packet-resubmit pipeline with `pyflow run --backend doca` against the DOCA Flow simulator: "
                   "frames on AF_PACKET through the simulated pipes, misses to an RSS queue, learner installs "
                   "through DOCA Flow calls, resubmit through the resubmit root pipe")
    rewrites = True
    cores = "2 (simulator wire thread, miss handler thread)"
    forwards_in_generator_softirq = False
    entries_via = None

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.proc = None
        self.lines: list[str] = []

    def unavailable(self):
        return doca_problem()

    def setup(self, lab, flows, learn: bool = False, capacity: int | None = None):
        lab.set_gro(DUT_IN, True)
        config = bench_config(self.workdir, max(capacity or len(flows), 1024))
        cmd = ns_prefix(lab.ns_dut) + [sys.executable, "-P", "-m", "pyflow", "run", "--backend", "doca",
                                       "--doca-sim", os.environ["PYFLOW_DOCA_SIM"], "-j", config,
                                       "-i", f"pfb{lab.tag}doca", "-o", "json", "-s", "1", "-l", "warning",
                                       "--port", f"uplink=0,iface={DUT_OUT}", "--port", f"vf0=1,iface={DUT_IN}"]
        debug("$ " + " ".join(cmd))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True, cwd=self.workdir)
        ready = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self.lines.append(line)
                if line.startswith("{"):
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        lab.cleanups.append(self._stop)
        if not ready.wait(60):
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self._stop()
            raise CommandError(f"pyflow run --backend doca did not start: {err.strip()[-300:]}")

    def _stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def teardown(self, lab):
        self._stop()
        super().teardown(lab)

    def dst_mac(self, lab):
        return lab.mac[DUT_IN]


if __name__ == "__main__":
    print(json.dumps(run_doca(None), indent=1, default=str))
