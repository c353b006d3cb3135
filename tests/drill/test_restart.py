"""Hitless restart of the ebpf controller, with steady traffic over learned flows.

The resubmit lab: frames from the user namespace miss the h2n pipe and are learned and resubmitted
by the miss handler (ipv4.dst = ipv4.src + 1.1.1.1). Established flows carry numbered frames through
a SIGKILL of `pyflow run` (crash) or a SIGTERM of a --keep-datapath run (planned upgrade) and the
start of a new run. Every frame sent on an established flow must arrive exactly once, the XDP
programs must never be detached (same program ids), and the new run must keep every learned entry
with its id, its counters and its idle timer, and learn new flows again.
"""
from __future__ import annotations

import shutil
import signal
import threading
import time
import uuid

import pytest

from pyflow.control import ControlClient
from pyflow.lab import ip_add
from tests.drill.restart_lab import Receiver, Sender, write_config, xdp_prog_ids
from tests.netns.test_miss import send
from tests.pyflow_testing import PyflowRun, wait_until

ESTABLISHED = [f"192.168.77.{i}" for i in range(1, 9)]
IDLE = "192.168.77.200"          # learned, then silent: must age out on its original clock
NEW = "192.168.77.222"           # first seen after the restart: learning resumes
IDLE_TIMEOUT = 4.0
SEQ0 = 1_000_000                 # steady frames are numbered from here; learning frames below


@pytest.fixture(scope="module")
def lab():
    from pyflow.lab import Lab

    with Lab("resubmit", prefix=f"pfd{uuid.uuid4().hex[:5]}") as lab:
        yield lab


def learned_rows(name: str) -> dict[str, dict]:
    with ControlClient(name) as c:
        rows = c.request("entry_list", pipe="h2n")
    return {r["match"]["ipv4.src"]: r for r in rows if r["origin"] == "learned"}


def miss_stats(name: str) -> dict:
    with ControlClient(name) as c:
        return c.request("counters")["miss_handler"]


@pytest.mark.parametrize("how", ["sigkill", "upgrade"])
def test_restart_is_hitless(lab, tmp_path, figures, how):
    name = f"{lab.prefix}{how[:3]}"
    cfg = write_config(tmp_path / "resubmit.json", idle_timeout=IDLE_TIMEOUT, max_flows=64)
    args = ["--backend", "ebpf", "-j", cfg, *lab.port_args(), "--instance", name, "--stats-interval", "1"]
    keep = ["--keep-datapath"] if how == "upgrade" else []
    rx = Receiver(lab)
    sender = Sender(lab, ESTABLISHED, seq0=SEQ0)
    first = PyflowRun([*args, "--fresh", *keep])
    second = None
    try:
        first.ready()
        # learn every flow with its first frame (resubmitted, so it arrives too)
        send(lab, ESTABLISHED + [IDLE])
        assert wait_until(lambda: all(rx.seen(s) for s in ESTABLISHED + [IDLE]), 5), rx.frames
        learned_at = time.monotonic()
        before = learned_rows(name)
        assert sorted(before) == sorted(ESTABLISHED + [IDLE])
        progs = xdp_prog_ids(lab.ports.values())
        assert all(progs.values()), progs

        sender.start()
        assert wait_until(lambda: all(len(rx.seen(s)) > 20 for s in ESTABLISHED), 5)
        t_down = time.monotonic()
        if how == "sigkill":
            first.stop(signal.SIGKILL)
        else:
            assert first.stop(signal.SIGTERM) == 0
        sent_at_down = sender.total()
        # down: the pinned datapath alone forwards; stay down until the idle flow is past its timeout
        # (the time down is what is tested: the idle entry's clock must run on while no controller does)
        time.sleep(max(1.0, IDLE_TIMEOUT + 0.5 - (time.monotonic() - learned_at)))
        assert xdp_prog_ids(lab.ports.values()) == progs, "XDP detached while the controller was down"
        sent_while_down = sender.total() - sent_at_down

        # watch the attachment while the new run starts: it may swap in its own program (an upgrade
        # must), but atomically; never may a port be without one
        gaps, watching = [], threading.Event()

        def watch():
            while not watching.is_set():
                ids = xdp_prog_ids(lab.ports.values())
                if not all(ids.values()):
                    gaps.append(ids)
                time.sleep(0.01)    # sampling the attachment while the new run starts

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        t_launch = time.monotonic()
        second = PyflowRun([*args, *keep])
        try:
            second.ready()
        finally:
            watching.set()
            watcher.join(timeout=5)
        assert not gaps, f"a port had no XDP program while the new run started: {gaps[:3]}"
        t_up = time.monotonic()
        assert second.wait_for("Re-adopted", 2), second.stderr[-20:]
        # learning resumes: probe a new flow until it comes out translated
        probes = 0
        while not rx.seen(NEW) and time.monotonic() - t_up < 10:
            send(lab, [NEW], seq0=probes)
            probes += 1
            wait_until(lambda: rx.seen(NEW), 0.05, 0.005)
        t_learned = time.monotonic()
        assert rx.seen(NEW), "the new run does not learn"
        # the idle flow was idle past its timeout before the restart: its clock was kept, so it goes at the
        # next sweep (a quarter of the timeout), not a whole timeout after the new run adopted it
        assert wait_until(lambda: miss_stats(name)["aged_out"] >= 1, IDLE_TIMEOUT / 2), \
            "the idle entry's timer restarted on adoption"
        aged_after = time.monotonic() - t_up
        # and the steady flows carry on under the new run
        carried = {s: len(rx.seen(s)) for s in ESTABLISHED}
        wait_until(lambda: min(len(rx.seen(s)) - carried[s] for s in ESTABLISHED), until=lambda n: n >= 20,
                   what="20 more frames on every established flow")
    finally:
        sender.finish()
        rx.drain(sender.sent)
        rx.finish()
        first.stop()
    try:
        now_progs = xdp_prog_ids(lab.ports.values())
        assert all(now_progs.values()), now_progs
        after = learned_rows(name)
        assert sorted(after) == sorted(ESTABLISHED + [NEW]), sorted(after)
        lost = 0
        for src in ESTABLISHED:
            got = [seq for seq in rx.seen(src) if seq > SEQ0]     # the steady frames, not the learning one
            assert len(got) == len(set(got)), f"{src}: duplicated frames"
            lost += len(set(sender.sent[src]) - set(got))
            # same entry id, and its counter kept counting across the restart: learning frame + every frame
            assert after[src]["id"] == before[src]["id"]
            assert after[src]["packets"] == 1 + len(sender.sent[src]), (src, after[src], len(sender.sent[src]))
        ms = miss_stats(name)
        figures(f"{how}: {sender.total()} frames on {len(ESTABLISHED)} established flows "
                f"({sent_while_down} while no controller ran), lost {lost}; learn gap {t_learned - t_down:.2f} s "
                f"(down {t_up - t_down:.2f} s on purpose, of which the new run's start {t_up - t_launch:.2f} s; "
                f"first new flow learned {t_learned - t_up:.2f} s after ready, "
                f"{probes} probe(s)); idle entry aged {aged_after:.2f} s after ready; new run installed "
                f"{ms['installed']}, aged_out {ms['aged_out']}; XDP program swapped in place "
                f"({'same' if now_progs == progs else 'new'} program ids, never detached)")
        assert lost == 0
        assert ip_add(NEW, "1.1.1.1") in {d for s, d, _ in rx.frames if s == NEW}
        assert second.stop(signal.SIGINT) == 0
    finally:
        if second is not None:
            second.stop()
        # a run without --keep-datapath removed the pins; make sure nothing of this drill stays
        shutil.rmtree(f"/sys/fs/bpf/pyflow/{name}", ignore_errors=True)
