"""Prometheus metrics scraped from running instances while real frames cross the datapath:
`pyflow run --metrics` and `pyflow exporter` (over the control socket) serve the same counters,
and they move by exactly what was sent."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pyflow.frames import build_frame
from tests.netns.portlab import PortLab
from tests.pyflow_testing import PyflowRun, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PIN_ROOT = "/sys/fs/bpf/pyflow"
N = 25


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[tuple, float]:
    """(sample name, sorted labels without instance) -> value."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "instance"))
            out[(s.name, labels)] = s.value
    return out


def moved(before: dict, after: dict, want: dict) -> bool:
    """Every sample in `want` moved by at least its value from `before` to `after`."""
    return all(after.get(k, 0) - before.get(k, 0) >= n for k, n in want.items())


@pytest.fixture
def lab_run(unique_prefix):
    made = []

    def start(config: str, ports: list[str], *extra: str):
        lab = PortLab(unique_prefix, ports)
        inst = f"{unique_prefix}-{config}"
        run = PyflowRun(["--backend", "ebpf", "-j", os.path.join(ROOT, "conf", f"{config}.json"), *lab.port_args(),
                         "--instance", inst, "--fresh", "--stats-interval", "5", *extra])
        made.append((lab, inst, run))
        run.ready()
        return lab, inst, run

    yield start
    for lab, inst, run in made:
        run.stop()
        lab.down()
        shutil.rmtree(os.path.join(PIN_ROOT, inst), ignore_errors=True)


def test_run_metrics_move_with_the_traffic(lab_run):
    port = free_port()
    lab, inst, run = lab_run("static-forward", ["p1", "p2", "p3"], "--metrics", f"127.0.0.1:{port}")
    assert wait_until(lambda: any("Prometheus metrics on" in line for line in run.stderr), 5)
    before = scrape(port)
    assert before[("pyflow_up", ())] == 1
    to_h2 = build_frame("ipv4.src=10.0.0.1 ipv4.dst=10.0.0.2 l4.dport=7000")
    drop = build_frame("ipv4.src=10.0.0.1 ipv4.dst=10.0.0.66")
    lab.send("p1", [to_h2] * N + [drop] * 3)
    # the last counters each frame moves: its way out, or its drop
    last = {("pyflow_port_transmit_packets_total", (("port", "p2"),)): N,
            ("pyflow_port_drops_total", (("port", "p1"), ("reason", "action"))): 3}
    after = wait_until(lambda: scrape(port), until=lambda m: moved(before, m, last), what=f"counters to reach {last}")

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0)

    assert delta("pyflow_entry_packets_total", pipe="l3", entry="h1_to_h2", origin="config") == N
    assert delta("pyflow_entry_bytes_total", pipe="l3", entry="h1_to_h2", origin="config") == N * len(to_h2)
    assert delta("pyflow_pipe_hits_total", pipe="classify") == N + 3
    assert delta("pyflow_port_receive_packets_total", port="p1") == N + 3
    assert delta("pyflow_port_transmit_packets_total", port="p2") == N
    assert delta("pyflow_port_drops_total", port="p1", reason="action") == 3
    assert after[("pyflow_pipe_entries", (("pipe", "l3"),))] == 6
    assert ("pyflow_port_xdp_mode", (("mode", "native"), ("port", "p1"))) in after or \
        ("pyflow_port_xdp_mode", (("mode", "generic"), ("port", "p1"))) in after
    assert ("pyflow_learner_received_total", ()) in after


def test_exporter_of_a_running_instance_with_seed_counters(lab_run):
    """ebpf-cast (seed 003): DPI classes counted as the video crosses; mpls-encap is covered by
    the counters test. The exporter reads over the control socket, like `pyflow counters`."""
    lab, inst, _run = lab_run("ebpf-cast", ["uplink", "vm1", "vm2", "vm3"])
    port = free_port()
    exp = subprocess.Popen([sys.executable, "-P", "-m", "pyflow", "exporter", "--instance", inst,
                            "--listen", f"127.0.0.1:{port}", "-d", "60"], stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: _listening(port), 10), "exporter did not start"
        before = scrape(port)
        psi = build_frame("ipv4.dst=10.9.9.9 l4.dport=1234 mpegts=psi")
        ref = build_frame("ipv4.dst=10.9.9.9 l4.dport=1234 mpegts=reference")
        lab.send("uplink", [psi] * N + [ref] * 4)
        last = {("pyflow_port_transmit_packets_total", (("port", vm),)): N + 4 for vm in ("vm1", "vm2", "vm3")}
        after = wait_until(lambda: scrape(port), until=lambda m: moved(before, m, last),
                           what=f"counters to reach {last}")

        def delta(name, **labels):
            key = (name, tuple(sorted(labels.items())))
            return after[key] - before.get(key, 0)

        assert delta("pyflow_dpi_frames_total", **{"class": "psi"}) == N
        assert delta("pyflow_dpi_frames_total", **{"class": "reference"}) == 4
        assert delta("pyflow_dpi_dropped_frames_total", **{"class": "psi"}) == 0
        assert delta("pyflow_entry_packets_total", pipe="switch", entry="video_in", origin="config") == N + 4
        for vm in ("vm1", "vm2", "vm3"):
            assert delta("pyflow_port_transmit_packets_total", port=vm) == N + 4
    finally:
        exp.terminate()
        exp.wait(10)


def _listening(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read()
        return True
    except OSError:
        return False


def _request_queued(port: int) -> bool:
    """A connection to 127.0.0.1:port holds bytes its server has not read yet."""
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return any(r[1] == f"0100007F:{port:04X}" and r[3] == "01" and int(r[4].split(":")[1], 16) > 0 for r in rows)


def test_exporter_errors_are_one_line(unique_prefix):
    for args, needle in ((["--instance", f"{unique_prefix}-none"], "no running pyflow instance"),
                         (["--instance", f"{unique_prefix}-x", "--listen", "nowhere"], "--listen")):
        r = subprocess.run([sys.executable, "-P", "-m", "pyflow", "exporter", *args], capture_output=True,
                           text=True, timeout=20)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, r.stderr


def test_seed_004_counters_per_prefix_and_label_stack_and_dscp_to_tc(lab_run):
    """mpls-encap: frames per (prefix, label stack) in `pyflow counters -o json` and in Prometheus,
    and the pushed labels carry the DSCP mapped by mpls_tc_map (ef -> 5, unmapped af21 -> its class
    selector 2), checked on the frames that arrived on the wan side."""
    from tests.pyflow_testing import counters_json

    port = free_port()
    lab, inst, _run = lab_run("mpls-encap", ["host", "wan"], "--metrics", f"127.0.0.1:{port}")
    ef = build_frame("ipv4.src=10.0.0.1 ipv4.dst=10.3.3.3 ipv4.dscp=46 l4.dport=53")
    af21 = build_frame("ipv4.src=10.0.0.1 ipv4.dst=10.20.30.40 ipv4.dscp=18 l4.dport=53")
    caps = lab.capture(["wan"])
    lab.send("host", [ef] * 7 + [af21] * 4)
    caps.wait({"wan": 11})
    got = caps.stop()["wan"]
    assert len(got) == 11
    tcs = sorted(((f[14] << 12 | f[15] << 4 | f[16] >> 4), (f[16] >> 1) & 7) for f in got)
    assert tcs == [(201003, 2)] * 4 + [(1000000, 5)] * 7
    rows = {(r["prefix"], r["labels"]): r["packets"] for r in counters_json(inst)["mpls"]}
    assert rows[("10.3.3.3/32", "1000000")] == 7
    assert rows[("10.0.0.0/8", "201003")] == 4
    assert rows[("8.8.8.0/24", "201007/201003")] == 0
    assert rows[("10.9.0.0/16", "1000000")] == 0
    after = scrape(port)
    assert after[("pyflow_mpls_packets_total", (("labels", "1000000"), ("pipe", "dst_lpm"),
                                               ("prefix", "10.3.3.3/32")))] == 7
    text = subprocess.run([sys.executable, "-P", "-m", "pyflow", "counters", "--instance", inst, "--detail"],
                          capture_output=True, text=True, timeout=20).stdout
    assert "10.3.3.3/32" in text and "201007/201003" in text


def test_learner_queue_depth_install_latency_offload_and_per_port_xdp_mode(lab_run):
    """resubmit: every new source is learned by the miss handler. The latency histogram counts exactly
    the installs the learner made; a burst of new flows shows frames waiting in the AF_XDP rx rings
    while the handler works through them, and the queue is empty once it is done."""
    import threading

    from pyflow.control import ControlClient

    port = free_port()
    lab, inst, run = lab_run("resubmit", ["uplink", "vf0"], "--metrics", f"127.0.0.1:{port}")
    assert wait_until(lambda: any("Prometheus metrics on" in line for line in run.stderr), 5)
    before = scrape(port)
    hist = "pyflow_miss_install_latency_seconds"
    frames = [build_frame(f"ipv4.src=10.50.0.{i + 1} ipv4.dst=20.1.1.100 l4.dport=80") for i in range(20)]
    lab.send("vf0", frames)
    assert wait_until(lambda: scrape(port)[("pyflow_learner_installed_total", ())] -
                      before[("pyflow_learner_installed_total", ())] == 20, 10)
    after = scrape(port)
    installed = after[("pyflow_learner_installed_total", ())]
    assert after[(f"{hist}_count", ())] - before.get((f"{hist}_count", ()), 0) == 20
    assert after[(f"{hist}_count", ())] == installed
    bounds = sorted((float(dict(k[1])["le"]), v) for k, v in after.items() if k[0] == f"{hist}_bucket")
    assert len(bounds) == 18 and bounds[0][0] == 1e-06 and bounds[-2][0] == 0.065536
    assert bounds[-1] == (float("inf"), installed)
    assert all(a[1] <= b[1] for a, b in zip(bounds, bounds[1:]))      # cumulative
    assert 0 < after[(f"{hist}_sum", ())] < installed * 1.0            # seconds, not ns
    assert after[("pyflow_learner_queue_depth", ())] == 0

    # offload: XDP runs in software, so every pipe and entry is 0
    assert {dict(k[1])["pipe"]: v for k, v in after.items() if k[0] == "pyflow_pipe_offloaded"} == \
        {"root": 0, "n2h": 0, "h2n": 0}
    learned = [v for k, v in after.items() if k[0] == "pyflow_entry_offloaded" and ("origin", "learned") in k[1]]
    assert len(learned) == 20 and not any(learned)

    # the XDP mode each port got, as the controller keeps it
    modes = ControlClient(inst).request("status")["xdp_modes"]
    got = {dict(k[1])["port"]: dict(k[1])["mode"] for k, v in after.items() if k[0] == "pyflow_port_xdp_mode"}
    assert got == modes and set(got) == {"uplink", "vf0"}

    # frames that wait for the handler: with the pyflow process stopped the kernel still hands
    # missed frames to the AF_XDP sockets, so they pile up in the rx rings; a scrape asked while
    # it is stopped is answered as it resumes, racing the handler that drains them
    n_burst = 900
    stats = f"/sys/class/net/{lab.ports['vf0'][1]}/statistics/rx_packets"
    waiting, sent = 0, 0
    # the scrape races the handler as the process resumes, so one try may find the rings drained already;
    # a queue depth that is never reported fails every try
    for attempt in range(5):
        burst = [build_frame(f"ipv4.src=10.{60 + 4 * attempt + i // 250}.0.{i % 250 + 1} ipv4.dst=20.1.1.100 "
                             f"l4.dport=80") for i in range(n_burst)]
        got: list[dict] = []
        asker = threading.Thread(target=lambda: got.append(scrape(port)))
        received = int(open(stats).read())
        os.kill(run.proc.pid, signal.SIGSTOP)
        try:
            for start in range(0, n_burst, 100):
                lab.send("vf0", burst[start:start + 100])
                # the next 100 once XDP took these off the veth's receive ring (256 frames)
                wait_until(lambda: int(open(stats).read()) - received, 5, 0.005, until=lambda n: n >= start + 100,
                           what=f"XDP on vf0 to take in {start + 100} frames of the burst")
            asker.start()
            wait_until(lambda: _request_queued(port), 5, 0.005, what="the scrape request to reach the stopped instance")
        finally:
            os.kill(run.proc.pid, signal.SIGCONT)
        asker.join(20)
        sent += n_burst
        waiting = got[0][("pyflow_learner_queue_depth", ())]
        assert 0 <= waiting <= n_burst
        assert wait_until(lambda: scrape(port)[("pyflow_learner_received_total", ())] -
                          after[("pyflow_learner_received_total", ())] == sent, 20)
        if waiting:
            break
    assert waiting > 0
    final = scrape(port)
    assert final[("pyflow_learner_queue_depth", ())] == 0
    # the policy's max_flows (256) refuses the rest of the bursts: the histogram counts the installs made
    assert final[(f"{hist}_count", ())] == final[("pyflow_learner_installed_total", ())] == 256
    assert final[("pyflow_learner_refused_max_flows_total", ())] == sent - (256 - installed)
    print(f"\n{n_burst} new flows sent while stopped: {waiting:.0f} waiting at the first scrape; install latency "
          f"mean {(final[(f'{hist}_sum', ())] / final[(f'{hist}_count', ())]) * 1e6:.0f} us")
