"""DOCA stop and start: SIGTERM / SIGINT stop in order (handler threads joined, pipes destroyed, ports
stopped, DOCA Flow destroyed) and exit 0; SIGKILL leaves nothing that stops the next start.

`pyflow run --backend doca` on the DOCA Flow simulator (tests/doca/sim), its ports bound to the resubmit
lab's root-side veths, so every run learns flows from real frames, which must come out translated. The
simulator's state as each process exits (tests/drill/doca_run.py) says what the backend tore down and
whether it kept DOCA Flow's documented order; DOCASIM_TRACE prints any DOCA call the simulator refused.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid

import pytest

from pyflow.lab import ip_add
from tests.doca.sim.build import sim_library
from tests.drill.restart_lab import Receiver
from tests.netns.test_miss import send
from tests.pyflow_testing import PyflowRun, counters_json, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


@pytest.fixture(scope="module")
def lab():
    from pyflow.lab import Lab

    with Lab("resubmit", prefix=f"pfa{uuid.uuid4().hex[:5]}") as lab:
        yield lab


def packet_sockets(ifindexes: set[int]) -> int:
    """AF_PACKET sockets of this namespace bound to one of ifindexes (the simulator's wire)."""
    with open("/proc/net/packet") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return sum(1 for r in rows if int(r[4]) in ifindexes)


def test_doca_stops_in_order_and_starts_again_after_sigkill(lab, tmp_path, monkeypatch, figures):
    lib = sim_library()
    monkeypatch.setenv("DOCASIM_TRACE", "1")       # the child prints every DOCA call the simulator refuses
    name = lab.prefix
    sock = f"/run/pyflow/{name}.sock"
    up, vf = lab.host("net").root_ifname, lab.host("user").root_ifname
    wire = {int(open(f"/sys/class/net/{i}/ifindex").read()) for i in (up, vf)}
    args = ["--backend", "doca", "--doca-sim", lib, "-j", os.path.join(ROOT, "conf", "resubmit.json"),
            "--instance", name, "--port", f"uplink=0,iface={up}", "--port", f"vf0=1,iface={vf}",
            "--stats-interval", "0.5"]
    rx = Receiver(lab)
    runs: list[PyflowRun] = []
    seen: list[str] = []

    def start(n: int) -> tuple[PyflowRun, str, float]:
        dump = str(tmp_path / f"sim-{n}.json")
        t0 = time.monotonic()
        r = PyflowRun(args, wrapper=[sys.executable, "-P", os.path.join(HERE, "doca_run.py"), dump, lib])
        runs.append(r)
        r.ready(60)
        assert packet_sockets(wire) >= 2        # the simulator's wire is up on both veths
        return r, dump, time.monotonic() - t0

    def learns(sources):
        send(lab, sources)
        assert wait_until(lambda: all(ip_add(s, "1.1.1.1") in {d for x, d, _ in list(rx.frames) if x == s}
                                      for s in sources), 20), sources

    def stopped_in_order(r: PyflowRun, dump: str, sig, learned: int) -> None:
        assert counters_json(name)["miss_handler"]["installed"] == learned
        t0 = time.monotonic()
        assert r.stop(sig, 30.0) == 0, "\n".join(r.stderr[-20:])
        took = time.monotonic() - t0
        assert f"Signal {int(sig)} received, preparing to exit..." in r.stdout
        assert r.wait_for("Shutting down", 1), r.stderr[-10:]
        # nothing refused by DOCA Flow on the way down, nothing warned or failed
        bad = [line for line in r.stderr if line.startswith("docasim:") or "Traceback" in line
               or (any(f"[{tag}]" in line for tag in ("WRN", "ERR", "CRT")) and "not on a device" not in line)]
        assert not bad, bad
        with open(dump) as f:
            state = json.load(f)
        assert (state["pipes"], state["ports"], state["initialised"], state["violations"]) == ([], [], False, 0), state
        assert not os.path.exists(sock)
        assert packet_sockets(wire) == 0
        seen.append(f"{sig.name} -> exit 0 in {took:.2f} s, {learned} learned flows, pipes destroyed, ports "
                    f"stopped, DOCA Flow destroyed, 0 order violations")

    try:
        first, dump, up1 = start(1)
        learns([f"192.168.41.{i}" for i in range(1, 6)])
        stopped_in_order(first, dump, signal.SIGTERM, 5)

        second, dump, _ = start(2)
        learns([f"192.168.42.{i}" for i in range(1, 6)])
        learns([f"192.168.43.{i}" for i in range(1, 6)])
        stopped_in_order(second, dump, signal.SIGINT, 10)

        killed, dump, _ = start(3)
        learns([f"192.168.44.{i}" for i in range(1, 6)])
        killed.stop(signal.SIGKILL)
        assert killed.proc.returncode == -signal.SIGKILL
        assert not os.path.exists(dump)          # no teardown ran
        left = [p for p in (sock,) if os.path.exists(p)]
        assert left == [sock]                    # what a killed instance leaves behind: its control socket
        assert packet_sockets(wire) == 0         # the kernel closed the simulator's wire with the process
        again, dump, took = start(4)
        assert os.path.exists(sock)
        learns([f"192.168.45.{i}" for i in range(1, 6)])
        learns([f"192.168.46.{i}" for i in range(1, 6)])
        stopped_in_order(again, dump, signal.SIGTERM, 10)
    finally:
        for r in runs:
            r.stop(signal.SIGKILL)
        rx.finish()
    figures("doca (simulator): " + "; ".join(seen) + f"; after SIGKILL left {left}, next start up in {took:.1f} s "
            f"(first start {up1:.1f} s) and learning again")
