"""DPDK stop and start: SIGTERM / SIGINT stop in order and exit 0; a second primary on the same
--file-prefix is one clear line; SIGKILL leaves nothing that stops the next start.

`pyflow run --backend dpdk` on the resubmit lab with net_af_packet vdevs on the lab's root-side veths,
without hugepages and with 2 MB hugepages of the test's own (a hugetlbfs it mounts, pages it reserves and
gives back). Each run learns flows from real frames, which must come out translated.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from pyflow.lab import ip_add
from tests.drill.restart_lab import Receiver
from tests.netns.test_miss import send
from tests.pyflow_testing import PyflowRun, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def lab():
    from pyflow.lab import Lab

    with Lab("resubmit", prefix=f"pfk{uuid.uuid4().hex[:5]}") as lab:
        yield lab


HUGE_PAGES = 320     # 2 MB pages reserved for the hugepage run (-m 512 takes 256)


@pytest.fixture(params=["no-huge", "hugepages"])
def memory(request, tmp_path):
    """EAL memory arguments; for hugepages a hugetlbfs of this test's own, the host's page count restored after."""
    if request.param == "no-huge":
        yield ["--no-huge", "-m", "512"], None
        return
    nr = "/proc/sys/vm/nr_hugepages"
    before = int(open(nr).read())
    mnt = tmp_path / "huge"
    mnt.mkdir()
    try:
        with open(nr, "w") as f:
            f.write(str(before + HUGE_PAGES))
        got = int(open(nr).read()) - before
        assert got >= 256, f"only {got} 2 MB hugepages could be reserved"
        subprocess.run(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "none", str(mnt)], check=True)
        try:
            yield ["-m", "512", "--huge-dir", str(mnt)], mnt
        finally:
            subprocess.run(["umount", str(mnt)], check=True)
    finally:
        with open(nr, "w") as f:
            f.write(str(before))


def test_dpdk_stops_in_order_and_starts_again_after_sigkill(lab, figures, memory):
    from tests.conftest import _probe_dpdk

    why = _probe_dpdk()
    if why:
        pytest.skip(f"dpdk: {why}")
    prefix = lab.prefix
    rundir = f"/var/run/dpdk/{prefix}"
    up, vf = lab.host("net").root_ifname, lab.host("user").root_ifname
    args = ["--backend", "dpdk", "-j", os.path.join(ROOT, "conf", "resubmit.json"), "--instance", prefix,
            "--port", "uplink=net_af_packet0", "--port", "vf0=net_af_packet1", "--stats-interval", "0.5",
            "--", "-l", "0-1", *memory[0], "--file-prefix", prefix, "--no-pci",
            "--vdev", f"net_af_packet0,iface={up}", "--vdev", f"net_af_packet1,iface={vf}"]
    rx = Receiver(lab)
    runs: list[PyflowRun] = []
    seen: list[str] = []

    def start() -> PyflowRun:
        r = PyflowRun(args)
        runs.append(r)
        r.ready(60)
        return r

    def learns(sources):
        send(lab, sources)
        assert wait_until(lambda: all(ip_add(s, "1.1.1.1") in {d for x, d, _ in list(rx.frames) if x == s}
                                      for s in sources), 20), sources

    def stopped_in_order(r: PyflowRun, sig) -> None:
        assert r.stop(sig, 30.0) == 0, r.stderr[-20:]
        assert f"Signal {int(sig)} received, preparing to exit..." in r.stdout
        steps = [next((i for i, line in enumerate(r.stderr) if step in line), None) for step in
                 ("Shutting down", "stopped: rte_flow rules removed, lcores and the miss handler joined, ports stopped",
                  f"ports closed, EAL cleaned up, {rundir} removed")]
        assert None not in steps and steps == sorted(steps), "\n".join(r.stderr[-10:])
        assert not any("[ERR]" in line or "Traceback" in line for line in r.stderr), r.stderr[-20:]
        assert not os.path.exists(rundir), os.listdir(rundir)
        assert not os.path.exists(f"/run/pyflow/{prefix}.sock")
        seen.append(f"{sig.name} -> exit 0, stopped in order, {rundir} removed")

    try:
        first = start()
        learns([f"192.168.21.{i}" for i in range(1, 6)])
        stopped_in_order(first, signal.SIGTERM)

        second = start()
        learns([f"192.168.22.{i}" for i in range(1, 6)])
        # a second primary on the same prefix: one line, exit 2, and the first one is not disturbed
        clash = PyflowRun(args)
        clash.proc.wait(60)
        clash.stop()
        errors = [line for line in clash.stderr if "error" in line]
        assert clash.proc.returncode == 2, clash.stderr[-10:]
        assert errors == [f"pyflow run: error: --file-prefix {prefix}: another DPDK primary process is running with "
                          f"it ({rundir}/config is locked); stop it or give this run another --file-prefix"], \
            clash.stderr[-10:]
        assert not any(line.startswith("EAL:") for line in clash.stderr), clash.stderr[-10:]
        learns([f"192.168.23.{i}" for i in range(1, 6)])
        stopped_in_order(second, signal.SIGINT)

        killed = start()
        learns([f"192.168.24.{i}" for i in range(1, 6)])
        killed.stop(signal.SIGKILL)
        left = sorted(os.listdir(rundir)) if os.path.isdir(rundir) else []
        assert "config" in left               # what a killed primary leaves behind
        huge_left = sorted(n for n in os.listdir(memory[1]) if n.startswith(prefix)) if memory[1] else []
        if memory[1]:
            assert huge_left, "a killed primary leaves its hugepage files"
        t0 = time.monotonic()
        again = start()
        took = time.monotonic() - t0
        assert again.wait_for("DPDK runtime files of a previous run that is gone", 1), again.stderr[-10:]
        learns([f"192.168.25.{i}" for i in range(1, 6)])
        stopped_in_order(again, signal.SIGTERM)
    finally:
        for r in runs:
            r.stop(signal.SIGKILL)
        rx.finish()
        shutil.rmtree(rundir, ignore_errors=True)
    kind = f"hugepages ({len(huge_left)} hugepage files left by the killed run, taken over)" if memory[1] else "no-huge"
    figures(f"dpdk {kind}: " + "; ".join(seen) + f"; second primary on the prefix refused in one line (exit 2); "
            f"after SIGKILL left {left} in {rundir}, next start up in {took:.1f} s and learning")
