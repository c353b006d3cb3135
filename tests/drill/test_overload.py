"""Overload: a miss storm while established flows carry traffic, and a full flow table.

Storm: `pyflow run` (resubmit pipeline, learning rate-limited) forwards paced traffic on learned flows
while a generator in the user namespace sends frames that are each a new flow, as fast as one
AF_PACKET socket goes. The established flows must lose nothing in the datapath and keep their
delivered rate within 10 % of the baseline measured just before the storm in the same run; the
accounting of the storm must be exact (every miss reached the handler or is a counted ring drop;
every frame the handler got was installed, coalesced, refused or shed; exactly the installed flows'
first frames came out); installs must stay within the rate limit. The storm is shed in XDP, before
the AF_XDP socket: the handler gets at most the rate limit per CPU, and its CPU per second during the
storm stays near what it spent, in the same run, learning new flows just under the rate limit.

Full table: with max_flows reached new flows are refused and counted and the established ones keep
forwarding; once the learned flows go idle the policy's idle timeout evicts them and new flows are
learned again.
"""
from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from pyflow.control import ControlClient
from tests.drill.restart_lab import Receiver, write_config
from tests.netns.test_miss import miss_handled, send, udp_frame
from tests.pyflow_testing import PyflowRun, wait_until

HERE = pathlib.Path(__file__).resolve().parent
ESTABLISHED = [f"192.168.44.{i}" for i in range(1, 5)]
RATE, BURST = 100, 20          # the policy's learning rate limit
PACE = 1000                    # established frames per second, all flows together
BASELINE, STORM = 2.0, 3.0     # seconds
LEARN_PACE = int(0.8 * RATE)    # new flows/s of the baseline: just under the rate limit, all learned


def learn_source(n: int) -> str:
    return f"10.20.{n // 250}.{n % 250 + 1}"


@pytest.fixture(scope="module")
def lab():
    from pyflow.lab import Lab

    with Lab("resubmit", prefix=f"pfo{uuid.uuid4().hex[:5]}") as lab:
        yield lab


class PacedSender(threading.Thread):
    """pace frames/s over the sources, on an absolute schedule: a thread that was held up sends what
    is due at once, so the offered rate does not depend on the host's load. sources(n): the n-th frame's."""

    def __init__(self, lab, pace=PACE, sources=lambda n: ESTABLISHED[n % len(ESTABLISHED)]):
        super().__init__(daemon=True)
        self.lab = lab
        self.pace, self.sources = pace, sources
        self.sent: dict[str, int] = {s: 0 for s in ESTABLISHED}
        self.stop_event = threading.Event()

    def run(self):
        import socket

        user, net = self.lab.host("user"), self.lab.host("net")
        with self.lab.socket("user", socket.AF_PACKET, socket.SOCK_RAW, 0) as s:
            s.bind((user.ifname, 0))
            t0, n = time.monotonic(), 0
            while not self.stop_event.is_set():
                due = int((time.monotonic() - t0) * self.pace)
                while n < due:
                    src = self.sources(n)
                    s.send(udp_frame(user.mac, net.mac, src, "20.1.1.100", 10_000 + n))
                    self.sent[src] = self.sent.get(src, 0) + 1
                    n += 1
                time.sleep(0.002)

    def finish(self):
        self.stop_event.set()
        self.join(timeout=5)


class TimedReceiver(Receiver):
    def __init__(self, lab):
        self.times: list[tuple[float, str]] = []
        super().__init__(lab)

    def run(self):
        import socket

        from tests.netns.test_miss import parse_udp

        while not self.stop_event.is_set():
            try:
                frame = self.sock.recv(4096)
            except (socket.timeout, OSError):
                continue
            p = parse_udp(frame)
            if p:
                self.frames.append(p[:3])
                self.times.append((time.monotonic(), p[0]))

    def established_in(self, t0: float, t1: float) -> int:
        return sum(1 for t, s in list(self.times) if t0 <= t < t1 and s in ESTABLISHED)


def handler_cpu(pid: int) -> float:
    """CPU seconds used so far by the instance's miss handler threads: their schedstat run time (ns),
    as the tick-granular utime+stime of /proc/<pid>/task/<tid>/stat is too coarse for a few ms."""
    total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        task = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{task}/comm") as f:
                if not f.read().startswith("pf-miss"):
                    continue
            with open(f"{task}/schedstat") as f:
                total += int(f.read().split()[0]) / 1e9
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def snapshot(name: str) -> dict:
    with ControlClient(name) as c:
        snap = c.request("counters")
    return {"miss": snap["miss_handler"], "h2n_misses": snap["pipes"]["h2n"]["misses"],
            "learned": {e["name"]: e["packets"] for e in snap["learned_entries"]},
            "xdp_rate_limit": sum(p["drops"]["rate_limit"] for p in snap["ports"].values())}


def settled(name: str) -> dict:
    """snapshot() once the handler is done with every miss so far."""
    return wait_until(lambda: snapshot(name), until=lambda snap: miss_handled(snap["h2n_misses"], snap["miss"]),
                      what="the handler to work off every miss")


def veth_drops(lab) -> int:
    """Frames the root-side end of the user veth dropped before any XDP program saw them."""
    return int(pathlib.Path(f"/sys/class/net/{lab.host('user').root_ifname}/statistics/rx_dropped").read_text())


def test_miss_storm_is_shed_and_counted_and_established_flows_keep_their_rate(lab, tmp_path, figures):
    name = f"{lab.prefix}st"
    cfg = write_config(tmp_path / "resubmit.json", rate_limit=RATE, burst=BURST, max_flows=1000)
    run = PyflowRun(["--backend", "ebpf", "-j", cfg, *lab.port_args(), "--instance", name, "--fresh",
                     "--stats-interval", "1"])
    rx = TimedReceiver(lab)
    sender = PacedSender(lab)
    try:
        run.ready()
        send(lab, ESTABLISHED)
        assert wait_until(lambda: all(rx.seen(s) for s in ESTABLISHED), 5)
        time.sleep(1.0)              # the bucket refills to its burst (on the kernel clock, which no counter shows)
        sender.start()
        wait_until(lambda: min(len(rx.seen(s)) for s in ESTABLISHED), until=lambda n: n > 50,
                   what="the paced frames on every established flow")
        # baseline: the established flows' rate, and the handler's CPU learning new flows at its rate
        base0, cpu_b0 = snapshot(name), handler_cpu(run.proc.pid)
        learning = PacedSender(lab, LEARN_PACE, learn_source)
        learning.start()
        t_base = time.monotonic()
        time.sleep(BASELINE)         # the window the baseline is measured over
        learning.finish()
        t_base_end = time.monotonic()
        settled(name)                # the handler works off what is queued
        time.sleep(max(0.0, t_base_end + 0.5 - time.monotonic()))   # the buckets refill
        cpu_b1, base1 = handler_cpu(run.proc.pid), snapshot(name)
        before, cpu0, drops0 = base1, cpu_b1, veth_drops(lab)
        user, net = lab.host("user"), lab.host("net")
        t_storm = time.monotonic()
        storm = subprocess.run(["ip", "netns", "exec", user.netns, sys.executable, str(HERE / "storm.py"),
                                user.ifname, user.mac, net.mac, str(STORM)], capture_output=True, text=True,
                               timeout=60)
        t_end = time.monotonic()
        assert storm.returncode == 0, storm.stderr
        storm_sent = int(storm.stdout)
        settled(name)                # the handler works off what is queued
        time.sleep(max(0.0, t_end + 0.5 - time.monotonic()))        # at least the 0.5 s its CPU is taken over
        cpu1, t_cpu = handler_cpu(run.proc.pid), time.monotonic()
        sender.finish()
        # every established frame its entry counted has arrived (one lost in the datapath never does)
        wait_until(lambda: snapshot(name)["learned"],
                   until=lambda n: all(n[f"{s}-flow"] == len(rx.seen(s)) for s in ESTABLISHED))
        after, drops1 = settled(name), veth_drops(lab)
    finally:
        sender.finish()
        rx.finish()
        code = run.stop(signal.SIGINT)
    assert code == 0

    # established flows: nothing lost in the datapath, every frame counted by its entry and delivered
    est_lost, before_datapath = 0, 0
    for src in ESTABLISHED:
        counted = after["learned"][f"{src}-flow"] - 1       # by its entry, after the learning frame
        arrived = len(rx.seen(src)) - 1
        est_lost += counted - arrived
        before_datapath += sender.sent[src] - counted
    veth = drops1 - drops0
    base_rate = rx.established_in(t_base, t_base + BASELINE) / BASELINE
    storm_rate = rx.established_in(t_storm, t_end) / (t_end - t_storm)

    # the storm, exactly accounted for
    d = {k: after["miss"][k] - before["miss"][k] for k in after["miss"]}
    misses = after["h2n_misses"] - before["h2n_misses"]
    storm_out = sum(1 for s, _, _ in rx.frames if s.startswith("10.") and int(s.split(".")[1]) >= 128)
    shed = d["shed_rate_limit"] + d["ring_drops"]
    cpu = cpu1 - cpu0
    storm_s = t_cpu - t_storm
    base_learned = base1["miss"]["installed"] - base0["miss"]["installed"]
    base_cpu_rate = (cpu_b1 - cpu_b0) / (t_base_end - t_base)
    storm_cpu_rate = cpu / storm_s
    ncpus = os.cpu_count() or 1
    xdp_shed = after["xdp_rate_limit"] - before["xdp_rate_limit"]
    figures(f"storm: {storm_sent} new-flow frames in {t_end - t_storm:.2f} s ({storm_sent / (t_end - t_storm):,.0f}/s); "
            f"{misses} missed h2n in the datapath, {d['received']} reached the handler, "
            f"{d['ring_drops']} AF_XDP ring drops (veth rx_dropped, which counts them too: {veth}); learned {d['installed']} (limit {RATE}/s, burst {BURST}), shed "
            f"{d['shed_rate_limit']} by the rate limit ({d['shed_in_datapath']} of them in XDP, port drops rate_limit "
            f"{xdp_shed}), {d['coalesced']} coalesced, {d['refused_max_flows']} refused; "
            f"not learned = {misses - d['installed']} = shed {shed}")
    figures(f"handler CPU: {storm_cpu_rate:.1%} of a core during the storm ({cpu * 1000:.0f} ms in {storm_s:.1f} s, "
            f"{d['received']} frames received); baseline learning {base_learned} new flows at {LEARN_PACE}/s: "
            f"{base_cpu_rate:.1%} of a core ({storm_cpu_rate / max(base_cpu_rate, 1e-6):.1f}x baseline)")
    figures(f"established: {sum(sender.sent.values())} frames, lost {est_lost} in the datapath "
            f"({before_datapath} before it, in the veth); delivered "
            f"{base_rate:.0f}/s before the storm, {storm_rate:.0f}/s during it ({storm_rate / base_rate:.1%})")
    assert est_lost == 0
    assert before_datapath <= veth         # only what the veth itself counted as dropped
    # shed in XDP: never received, counted as drop reason rate_limit and in the learner's shed count
    assert d["shed_in_datapath"] == xdp_shed > 0
    assert misses == d["received"] + d["ring_drops"] + d["shed_in_datapath"]
    assert d["received"] == (d["installed"] + d["shed_rate_limit"] - d["shed_in_datapath"] + d["coalesced"]
                             + d["refused_max_flows"])
    assert misses - d["installed"] == shed + d["coalesced"] + d["refused_max_flows"]
    assert storm_out == d["installed"] == d["resubmitted"]
    assert d["installed"] <= BURST + RATE * (t_end - t_storm + 1.0)
    assert d["installed"] >= BURST
    assert storm_rate >= 0.9 * base_rate
    # the handler gets at most each CPU's bucket (burst + rate over the storm), not the storm
    assert d["received"] <= ncpus * (BURST + RATE * (t_end - t_storm + 1.0))
    assert base_learned >= 0.9 * LEARN_PACE * BASELINE
    # its CPU follows its rate, not the storm: near the baseline's, with a floor for wake-ups
    assert storm_cpu_rate <= 2 * ncpus * base_cpu_rate + 0.02, (storm_cpu_rate, base_cpu_rate)


MAX_FLOWS, IDLE = 16, 2.0


def test_full_table_refuses_and_counts_then_idle_flows_are_evicted(lab, tmp_path, figures):
    name = f"{lab.prefix}ft"
    cfg = write_config(tmp_path / "resubmit.json", max_flows=MAX_FLOWS, idle_timeout=IDLE)
    run = PyflowRun(["--backend", "ebpf", "-j", cfg, *lab.port_args(), "--instance", name, "--fresh",
                     "--stats-interval", "1"])
    rx = Receiver(lab)
    first = [f"192.168.33.{i}" for i in range(1, MAX_FLOWS + 1)]
    busy, idle = first[:MAX_FLOWS // 2], first[MAX_FLOWS // 2:]
    late = [f"192.168.34.{i}" for i in range(1, 11)]
    try:
        run.ready()
        send(lab, first)
        assert wait_until(lambda: all(rx.seen(s) for s in first), 5)
        # full: new flows are refused and counted, nothing of them comes out, the learned ones still forward
        send(lab, late, seq0=100)
        send(lab, first, seq0=200)
        assert wait_until(lambda: all(len(rx.seen(s)) == 2 for s in first), 5)
        assert wait_until(lambda: snapshot(name)["miss"]["refused_max_flows"] == len(late), 10)
        assert not any(rx.seen(s) for s in late)
        full = snapshot(name)
        assert sorted(full["learned"]) == sorted(f"{s}-flow" for s in first)
        # half the flows go idle: the idle timeout evicts exactly those
        t0 = time.monotonic()
        seq = 300
        while time.monotonic() - t0 < 6 and snapshot(name)["miss"]["aged_out"] < len(idle):
            send(lab, busy, seq0=seq)
            seq += len(busy)
            time.sleep(0.3)          # pacing: the busy flows stay well inside the idle timeout
        evicted = snapshot(name)
        assert evicted["miss"]["aged_out"] == len(idle), evicted["miss"]
        assert sorted(evicted["learned"]) == sorted(f"{s}-flow" for s in busy)
        # room again: the late flows are learned until the table is full once more
        send(lab, late, seq0=1000)
        assert wait_until(lambda: sum(bool(rx.seen(s)) for s in late) == len(idle), 5)
        last = settled(name)
        assert last["miss"]["refused_max_flows"] == len(late) + len(late) - len(idle)
        assert len(last["learned"]) == MAX_FLOWS
        assert run.proc.poll() is None
    finally:
        rx.finish()
        code = run.stop(signal.SIGINT)
    assert code == 0
    m = last["miss"]
    figures(f"full table (max_flows {MAX_FLOWS}): {len(late)} new flows refused and counted "
            f"(refused_max_flows {full['miss']['refused_max_flows']}), established still forwarding; "
            f"{m['aged_out']} idle flows evicted after {IDLE:.0f} s idle, the {len(busy)} busy ones kept; then "
            f"{len(idle)} late flows learned and {len(late) - len(idle)} refused again "
            f"(refused_max_flows {m['refused_max_flows']}, installed {m['installed']}); exit 0")
