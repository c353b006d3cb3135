"""Command line and orchestration of the parts."""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time

from .build import Tools
from .common import log
from .lab import Lab, leftover_namespaces

PARTS = ("fastpath", "setup", "scale", "dpdk", "doca")
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/run.py", description="pyflow benchmarks against the tools users would pick instead")
    p.add_argument("--part", action="append", choices=PARTS, help="run only this part (repeatable); default all")
    p.add_argument("--repeats", type=int, default=5, help="repetitions of every measurement (default 5)")
    p.add_argument("--duration", type=float, default=2.0, help="seconds per throughput measurement (default 2)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 repeats, 0.5 s, small scale steps")
    p.add_argument("--sizes", default="64,1500", help="frame sizes on the wire (default 64,1500)")
    p.add_argument("--flows", type=int, default=10, help="learned flows in the fast-path run (default 10, as the resubmit example)")
    p.add_argument("--batch", type=int, default=64, help="generator batch size (BPF_PROG_RUN batch_size)")
    p.add_argument("--setup-flows", type=int, default=2000, help="new flows per flow-setup burst")
    p.add_argument("--scale", default="1000,100000,1000000", help="installed entries for the scale part")
    p.add_argument("--no-ovs", action="store_true", help="leave out the Open vSwitch peers")
    p.add_argument("--no-profile", action="store_true", help="skip the bpf_stats profiling run")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--capture", action="store_true",
                   help="fast path: add pyflow with a capture running (filtered out, and every frame)")
    p.add_argument("--out", default=RESULTS_DIR, help="where results go (default bench/results)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = min(args.repeats, 2)
        args.duration = min(args.duration, 0.5)
        args.setup_flows = min(args.setup_flows, 500)
        args.scale = "1000,100000"
    args.parts = args.part or list(PARTS)
    return args


class Context:
    def __init__(self, args, lab, workdir):
        self.args = args
        self.lab = lab
        self.workdir = workdir
        self.sizes = [int(s) for s in args.sizes.split(",")]
        self._ovs = None

    def ovs_daemons(self):
        from .ovs import OvsDaemons
        if self._ovs is None:
            self._ovs = OvsDaemons(self.lab, self.workdir, cpu=1 if os.cpu_count() > 1 else 0)
            self._ovs.start()
        return self._ovs

    def fastpath_systems(self):
        from .ovs import OvsUserspace, ensure_installed
        from .pyflow_systems import PyflowEbpf
        from .systems import LinuxBridge, LinuxForwarding, RedirectCeiling
        systems = [RedirectCeiling(self.workdir), PyflowEbpf(self.workdir), LinuxForwarding(), LinuxBridge()]
        if getattr(self.args, "capture", False):
            from .pyflow_systems import PyflowEbpfCapture
            # armed at a point no fast-path frame reaches (drops), then every frame at egress
            systems[2:2] = [PyflowEbpfCapture(self.workdir, ["drop"], "armed, nothing matches"),
                            PyflowEbpfCapture(self.workdir, ["egress"], "every frame")]
        if not self.args.no_ovs:
            why = ensure_installed()
            for port_type in ("system", "afxdp"):
                ovs = OvsUserspace(self.ovs_daemons, port_type)
                if why:
                    ovs.unavailable = lambda why=why: why
                systems.append(ovs)
        return systems


def environment() -> dict:
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:
            return ""
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"kernel": platform.release(), "cpus": os.cpu_count(), "cpu_model": _cpu_model(), "loadavg_start": load,
            "clang": out(["clang", "--version"]).splitlines()[0] if shutil.which("clang") else None,
            "ovs": out(["ovs-vswitchd", "--version"]).splitlines()[0] if shutil.which("ovs-vswitchd") else None,
            "dpdk_testpmd": bool(shutil.which("dpdk-testpmd"))}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main(argv) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        log("the benchmarks need root (network namespaces, XDP, BPF_PROG_RUN)")
        return 2
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results = {"timestamp": stamp, "args": vars(args), "environment": environment(), "parts": {}}
    started = time.time()
    workdir = tempfile.mkdtemp(prefix="pfb-bench-")
    try:
        tools = Tools(workdir)
        tools.build()
        with Lab(tools) as lab:
            log(f"lab up: namespaces {lab.ns_gen} {lab.ns_dut} {lab.ns_sink}")
            ctx = Context(args, lab, workdir)
            for part in PARTS:
                if part not in args.parts:
                    continue
                log(f"== {part}")
                results["parts"][part] = run_part(part, ctx)
    except KeyboardInterrupt:
        log("interrupted: lab removed")
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["elapsed_s"] = time.time() - started
    from . import report
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"{stamp}.json")
    with open(path, "w") as fh:
        json.dump(results, fh, indent=1, default=str)
    print(report.render(results))
    if not args.no_plots:
        for png in report.plots(results, args.out, stamp):
            log(f"plot: {png}")
    log(f"results: {path} ({results['elapsed_s']:.0f} s)")
    left = [ns for ns in leftover_namespaces() if ns.startswith(f"pfb")]
    if left:
        log(f"note: namespaces named pfb* exist that this run did not leave: {' '.join(left)}")
    return 0


def run_part(part: str, ctx) -> dict:
    if part == "fastpath":
        from .fastpath import run_fastpath
        return run_fastpath(ctx)
    if part == "setup":
        from .flowsetup import run_setup
        return run_setup(ctx)
    if part == "scale":
        from .scale import run_scale
        return run_scale(ctx)
    if part == "dpdk":
        from .dpdk import run_dpdk
        return run_dpdk(ctx)
    if part == "doca":
        from .pyflow_doca import run_doca
        return run_doca(ctx)
    raise ValueError(part)
