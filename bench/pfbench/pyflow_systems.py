"""pyflow as a system under test: the packet-resubmit pipeline (conf/resubmit.json) on the lab's DUT ports."""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time

from .common import CommandError, log, ns_prefix
from .lab import DUT_IN, DUT_OUT, GEN_IF
from .systems import System, xdp_prog_ids
from .traffic import FLOW_DST, FLOW_SRC_BASE, Generator, udp_frame

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RESUBMIT_CONFIG = os.path.join(REPO, "conf", "resubmit.json")
DRIVER = os.path.join(os.path.dirname(__file__), "pyflow_dut.py")


def pyflow_problem(backend: str) -> str | None:
    """Why pyflow's `backend` cannot be benchmarked here, or None."""
    try:
        from pyflow.native import backend_available
        import pyflow.controller  # noqa: F401  (the pieces the driver uses)
        import pyflow.instance  # noqa: F401
    except Exception as exc:
        return f"pyflow is not importable ({exc})"
    if not os.path.exists(RESUBMIT_CONFIG):
        return f"{RESUBMIT_CONFIG} is missing"
    ok, why = backend_available(backend)
    return None if ok else f"pyflow backend {backend}: {why}"


def bench_config(workdir: str, max_flows: int, room: int = 8192) -> str:
    """The packet-resubmit config with the learned pipe sized for max_flows entries, plus room for others."""
    with open(RESUBMIT_CONFIG) as fh:
        cfg = json.load(fh)
    for pipe in cfg["pipes"]:
        if pipe["name"] == "h2n":
            # room for the learned flows plus entries added at run time through the control API
            pipe["max_entries"] = max(pipe.get("max_entries", 0), max_flows + room)
    for policy in cfg.get("miss_policies", []):
        policy["max_flows"] = max(policy.get("max_flows", 0), max_flows)
    path = os.path.join(workdir, f"resubmit-{max_flows}-{room}.json")
    with open(path, "w") as fh:
        json.dump(cfg, fh)
    return path


class PyflowDriver:
    """The pyflow_dut.py process in the DUT namespace."""

    def __init__(self, lab, workdir: str, max_flows: int, backend: str = "ebpf", room: int = 8192):
        self.lab = lab
        self.instance = f"pfb{lab.tag}pf"
        args = {"backend": backend, "config": bench_config(workdir, max_flows, room), "instance": self.instance,
                "ports": {"vf0": DUT_IN, "uplink": DUT_OUT}, "max_entries": max_flows + room + 64}
        # pyflow looks interfaces up in /sys/class/net, which shows the netns sysfs was mounted in: give the
        # driver a private mount namespace with the DUT's sysfs and the shared bpffs (pins) bound back in.
        keep = os.path.join(workdir, "bpffs")
        os.makedirs(keep, exist_ok=True)
        script = (f"mount --make-rprivate / && mount --bind /sys/fs/bpf {keep} && mount -t sysfs sysfs /sys && "
                  f"mount --bind {keep} /sys/fs/bpf && exec \"$0\" \"$@\"")
        cmd = ns_prefix(lab.ns_dut) + ["unshare", "--mount", "sh", "-c", script, sys.executable, DRIVER, json.dumps(args)]
        self.proc = subprocess.Popen(cmd,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, start_new_session=True)
        lab.cleanups.append(self.close)
        hello = self._read(timeout=60)
        if "error" in hello:
            self.close()
            raise CommandError(hello["error"])
        self.info = hello

    def _read(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise CommandError(f"pyflow driver gave no answer in {timeout:.0f}s (exit {self.proc.poll()})")
        return json.loads(line)

    def request(self, timeout: float = 600, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=20)
            except (BrokenPipeError, subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()


class PyflowEbpf(System):
    name = "pyflow-ebpf"
    label = "pyflow eBPF"
    description = ("packet-resubmit pipeline from conf/resubmit.json: root (meta.port) -> h2n hit (ipv4.src) -> "
                   "set ipv4.dst = src + 1.1.1.1 -> redirect to uplink; entries learned through the miss path")
    rewrites = True

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.driver: PyflowDriver | None = None
        self.entries_via = None

    def unavailable(self):
        return pyflow_problem("ebpf")

    def setup(self, lab, flows, learn: bool = True, capacity: int | None = None, room: int = 8192):
        """capacity: flows the learned pipe holds; room: entries beyond them for the control API."""
        self.driver = PyflowDriver(lab, self.workdir, max_flows=max(capacity or len(flows), 1024), room=room)
        if not flows:
            self.entries_via = None
            return
        self.entries_via = "control API"
        self.learned = 0
        if learn:
            self.entries_via = self._learn(lab, flows)
        if self.entries_via != "miss path":
            result = self.driver.request(op="install", count=len(flows), src_base=flows[0])
            if result["installed"] + self.learned < len(flows):
                raise CommandError(f"installing {len(flows)} entries: {result.get('first_error')}")

    def _learn(self, lab, flows) -> str:
        """One frame per flow; the miss handler installs and resubmits. Falls back to the control API."""
        frame = udp_frame(self.dst_mac(lab), lab.mac[GEN_IF], flows[0], FLOW_DST, 64)
        Generator(lab).send(frame, count=len(flows), nflows=len(flows), src_base=flows[0], batch=16)
        deadline = time.time() + 5 + len(flows) / 20000
        stats = {}
        self.learned = 0
        while time.time() < deadline:
            stats = self.driver.request(op="miss_stats")
            self.learned = stats.get("installed", 0)
            if self.learned >= len(flows):
                return "miss path"
            time.sleep(0.1)
        log(f"pyflow-ebpf: miss path learned {stats.get('installed', 0)}/{len(flows)} flows; "
            f"installing the rest through the control API")
        return "control API"

    def teardown(self, lab):
        if self.driver:
            self.driver.close()
            self.driver = None
        super().teardown(lab)


class PyflowEbpfCapture(PyflowEbpf):
    """The same pipeline with `pyflow capture` running at `points` (the cost of capture on)."""

    def __init__(self, workdir: str, points: list[str], what: str):
        super().__init__(workdir)
        self.points = points
        self.name = "pyflow-ebpf-cap-" + "-".join(p.replace(":", "_") for p in points)
        self.label = f"pyflow eBPF, capture {what}"
        self.description = f"as pyflow-ebpf, with a capture at {', '.join(points)} ({what}) into /dev/null"

    def setup(self, lab, flows, learn: bool = True, capacity: int | None = None):
        super().setup(lab, flows, learn, capacity)
        result = self.driver.request(op="capture", points=self.points, path="/dev/null")
        if "error" in result:
            raise CommandError(result["error"])

    def prog_ids(self, lab):
        return xdp_prog_ids(lab, DUT_IN)
