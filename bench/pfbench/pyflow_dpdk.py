"""pyflow's DPDK backend as a system under test, run exactly as a user would: `pyflow run --backend dpdk`.

The counters come from the JSON lines `pyflow run -o json` prints every --stats-interval (the same
snapshot `pyflow counters` reads), so nothing in the measurement is bench-only code inside pyflow.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

from .common import CommandError, debug, log, ns_prefix
from .lab import DUT_IN, DUT_OUT
from .pyflow_systems import bench_config, pyflow_problem
from .systems import System

EAL_COMMON = ["--no-huge", "-m", "512", "--no-pci", "--no-telemetry", "--log-level=lib.eal:error"]


class PyflowDpdkRun:
    """One `python -m pyflow run --backend dpdk ... -o json -- EAL` process and its counter lines."""

    def __init__(self, config: str, instance: str, ports: dict[str, str], eal: list[str], *, ns: str | None = None,
                 stats_interval: float = 1.0, cwd: str | None = None):
        self.instance = instance
        self.prefix = next(a.split("=", 1)[1] for a in eal if a.startswith("--file-prefix="))
        cmd = [sys.executable, "-P", "-m", "pyflow", "run", "--backend", "dpdk", "-j", config, "-i", instance,
               "-o", "json", "-s", str(stats_interval), "-l", "warning"]
        for name, binding in ports.items():
            cmd += ["--port", f"{name}={binding}"]
        cmd += ["--", *eal]
        if ns:
            cmd = ns_prefix(ns) + cmd
        debug("$ " + " ".join(cmd))
        self.snapshots: list[dict] = []
        self.stderr: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True, cwd=cwd)
        self._threads = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for t in self._threads:
            t.start()

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("{"):
                try:
                    snap = json.loads(line)
                except json.JSONDecodeError:
                    continue
                with self._cond:
                    self.snapshots.append(snap)
                    self._cond.notify_all()

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip())
            del self.stderr[:-50]

    def wait_for(self, predicate, timeout: float) -> dict:
        """The first counter snapshot for which predicate holds (raises if the run dies or times out)."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for snap in self.snapshots[seen:]:
                    if predicate(snap):
                        return snap
                seen = len(self.snapshots)
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    tail = " | ".join(self.stderr[-3:])
                    raise CommandError(f"pyflow run --backend dpdk: {'exited ' + str(self.proc.returncode) if self.proc.poll() is not None else 'timed out'}"
                                       f"{': ' + tail if tail else ''}")
                self._cond.wait(min(left, 0.5))

    def next_snapshots(self, count: int, timeout: float) -> list[dict]:
        start = len(self.snapshots)
        self.wait_for(lambda s: len(self.snapshots) >= start + count, timeout)
        return self.snapshots[start:start + count]

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for t in self._threads:
            t.join(timeout=2)
        # pyflow removes its runtime directory on a clean close; after a kill it would be left behind
        subprocess.run(["rm", "-rf", f"/var/run/dpdk/{self.prefix}"], check=False)
        return self.proc.returncode


def learned_count(snap: dict) -> int:
    return snap.get("miss_handler", {}).get("installed", 0)


def port_tx(snap: dict, port: str) -> int:
    return snap["ports"][port]["tx_packets"]


def learned_hits(snap: dict) -> int:
    return sum(e["packets"] for e in snap.get("learned_entries", []))


class PyflowDpdkSetup(System):
    """pyflow DPDK on the lab's DUT veths through net_af_packet, for the flow-setup part.

    Frames from the generator arrive on pfbd0 (GRO on, so the veth takes XDP-redirected frames), the
    af_packet PMD hands them to the software pipes, misses go to the miss handler, which installs and
    resubmits; the resubmitted frame leaves on pfbd1 toward the sink.
    """

    name = "pyflow-dpdk"
    label = "pyflow DPDK (af_packet)"
    description = ("packet-resubmit pipeline with `pyflow run --backend dpdk` on net_af_packet over the DUT veths: "
                   "ring to the miss handler, learner installs into the software table, resubmit by re-running "
                   "the pipeline and transmitting")
    rewrites = True
    cores = "2 (worker lcore 1, controller and miss handler on lcore 0)"
    forwards_in_generator_softirq = False
    entries_via = None

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.run: PyflowDpdkRun | None = None
        self.seq = 0

    def unavailable(self):
        return pyflow_problem("dpdk")

    def setup(self, lab, flows, learn: bool = False, capacity: int | None = None):
        lab.set_gro(DUT_IN, True)
        self.seq += 1
        prefix = f"pfb{lab.tag}dp{self.seq}"
        eal = ["-l", "0,1", *EAL_COMMON, f"--file-prefix={prefix}",
               "--vdev", f"net_af_packet0,iface={DUT_IN},framecnt=4096",
               "--vdev", f"net_af_packet1,iface={DUT_OUT},framecnt=4096"]
        config = bench_config(self.workdir, max(capacity or len(flows), 1024))
        self.run = PyflowDpdkRun(config, prefix, {"vf0": "net_af_packet0", "uplink": "net_af_packet1"}, eal,
                                 ns=lab.ns_dut, stats_interval=1.0, cwd=self.workdir)
        lab.cleanups.append(self._stop)
        self.run.wait_for(lambda s: True, timeout=60)   # the first counter line: ports up, pipes programmed

    def _stop(self) -> None:
        if self.run:
            code = self.run.stop()
            if code not in (0, None):
                log(f"pyflow-dpdk: pyflow run exited {code}: {' | '.join(self.run.stderr[-3:])}")
            self.run = None

    def teardown(self, lab):
        self._stop()
        super().teardown(lab)

    def dst_mac(self, lab):
        return lab.mac[DUT_IN]

