"""`pyflow run --backend dpdk` through the real CLI on the resubmit lab (packet resubmit).

One pyflow process runs for the whole module: net_af_packet vdevs bound to the
lab's root-side veths, 10 flows sent from the user namespace twice. The tests
read it from outside: frames captured in the net namespace, the counter lines
on its stdout, `pyflow counters -o json` over the control socket,
`dpdk-telemetry.py` over the EAL's telemetry socket, and finally SIGINT.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests.pyflow_testing import PyflowRun, counters_json, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLOWS = [f"192.168.99.{101 + i}" for i in range(10)]
LINE = re.compile(r"^Static Entry Counters: (?P<static>(?:\S+: \d+, )*); egress entry counters: "
                  r"(?P<learned>(?:\S+: \d+, )*); Pipe Miss counters: (?P<misses>(?:\d+, ?)*)$")


def created(run: PyflowRun) -> list[str]:
    return [line for line in list(run.stderr) if "Created flow for IP" in line]


def static_counters(line: str) -> dict:
    m = LINE.match(line)
    assert m, line
    return {k: int(v) for k, v in (kv.split(": ") for kv in m["static"].rstrip(", ").split(", "))}


@pytest.fixture(scope="module")
def running():
    from pyflow import lab as labmod

    prefix = f"pfq{uuid.uuid4().hex[:4]}"
    lab = labmod.Lab("resubmit", prefix=prefix).up()
    run = None
    try:
        up, vf = lab.host("net").root_ifname, lab.host("user").root_ifname
        run = PyflowRun(["--backend", "dpdk", "-j", os.path.join(ROOT, "conf", "resubmit.json"), "--instance", prefix,
                         "--port", "uplink=net_af_packet0", "--port", "vf0=net_af_packet1", "--stats-interval", "0.5",
                         "--", "-l", "0-1", "--no-huge", "-m", "512", "--file-prefix", prefix, "--no-pci",
                         "--vdev", f"net_af_packet0,iface={up}", "--vdev", f"net_af_packet1,iface={vf}"])
        run.ready(60)
        user, net = lab.host("user"), lab.host("net")

        def frames(tag: str):
            return [labmod.eth(net.mac, user.mac, 0x0800,
                               labmod.ipv4_udp(src, "20.1.1.100", labmod.payload_tag(tag, i), dport=4000))
                    for i, src in enumerate(FLOWS)]

        with labmod.Capture(lab, "net") as cap:
            t0 = time.monotonic()
            lab.send_frames("user", frames("first"))        # every one misses h2n, is learned and resubmitted
            wait_until(lambda: len(created(run)) >= len(FLOWS), 20, interval=0.02)
            learn_s = time.monotonic() - t0
            # the resubmit example's state after the first packets: printed once they are all out, before the second ones
            after_first = "".join(f"{s}-flow: 1, " for s in FLOWS)
            first_line = run.wait_for(after_first, 10, stream="stdout")
            first_snap = counters_json(prefix)
            lab.send_frames("user", frames("second"))       # every one hits its learned entry
            wait_until(lambda: len([f for f in cap.frames if b"pfl " in f]) >= 2 * len(FLOWS), 10)
            # what the datapath sent is in: anything extra would be now
            wait_until(lambda: counters_json(prefix)["ports"]["uplink"]["tx_packets"], 10,
                       until=lambda n: n >= 2 * len(FLOWS), what="the uplink to count every frame out")
        yield {"lab": lab, "run": run, "prefix": prefix, "captured": cap.frames, "learn_s": learn_s,
               "first_line": first_line, "first_snap": first_snap}
    finally:
        if run is not None:
            run.stop(signal.SIGINT, 20.0)
        lab.down()
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)


def test_flows_arrive_rewritten_on_the_uplink(running):
    from pyflow.lab import ip_add, parse_frame, read_tag

    got = {}
    for f in running["captured"]:
        p = parse_frame(f)
        if p and read_tag(p):
            got[read_tag(p)] = p
    assert sorted(got) == sorted((tag, i) for tag in ("first", "second") for i in range(len(FLOWS))), \
        running["run"].stderr[-20:]
    for (tag, i), p in got.items():
        assert p["ip_src"] == FLOWS[i]
        assert p["ip_dst"] == ip_add(FLOWS[i], "1.1.1.1")
        assert p["ip_csum_ok"] and p["l4_csum_ok"]
    assert [line.split("Created flow for IP ")[1] for line in created(running["run"])] == [f"{s}->20.1.1.100" for s in FLOWS]
    print(f"\n10 flows learned and resubmitted in {running['learn_s'] * 1000:.0f} ms")


def test_counter_lines_in_the_doca_example_format(running):
    """The resubmit example's numbers: a resubmitted frame is counted from the pipe that missed on (as on eBPF), so
    after N first packets the root entry and vf0 rx read N and every learned entry 1."""
    line = running["first_line"]
    assert line, running["run"].stdout[-3:]
    assert static_counters(line) == {"root_net_to_host": 0, "root_host_to_net_vf0": 10, "n2h_to_vf0": 0,
                                     "rss_pipe": 10}
    m = LINE.match(line)
    assert m["learned"] == "".join(f"{s}-flow: 1, " for s in FLOWS)
    assert m["misses"].strip() == "10,"

    run = running["run"]
    want = "".join(f"{s}-flow: 2, " for s in FLOWS)
    line = run.wait_for(want, 10, stream="stdout")
    assert line, run.stdout[-3:]
    # second frames: root and the learned entry once each, no new miss
    assert static_counters(line) == {"root_net_to_host": 0, "root_host_to_net_vf0": 20, "n2h_to_vf0": 0,
                                     "rss_pipe": 10}
    assert LINE.match(line)["misses"].strip() == "10,"


def test_counters_over_the_control_socket(running):
    first = running["first_snap"]
    assert {e["name"]: e["packets"] for e in first["learned_entries"]} == {f"{s}-flow": 1 for s in FLOWS}
    assert {e["name"]: e["packets"] for e in first["static_entries"]}["root_host_to_net_vf0"] == 10
    assert first["pipes"]["h2n"] == {"hits": 10, "misses": 10}
    assert (first["ports"]["vf0"]["rx_packets"], first["ports"]["uplink"]["tx_packets"]) == (10, 10)

    snap = counters_json(running["prefix"])
    assert {e["name"]: e["packets"] for e in snap["learned_entries"]} == {f"{s}-flow": 2 for s in FLOWS}
    assert snap["miss_handler"]["installed"] == 10 and snap["miss_handler"]["resubmitted"] == 10
    assert snap["pipes"]["h2n"] == {"hits": 20, "misses": 10}
    assert snap["pipes"]["root"] == {"hits": 20, "misses": 0}
    # a resubmitted frame is not received again: vf0 rx counts what the user sent
    assert snap["ports"]["vf0"]["rx_packets"] == 20
    assert snap["ports"]["uplink"]["tx_packets"] == 20
    assert not any(snap["ports"]["vf0"]["drops"].values()), snap["ports"]["vf0"]["drops"]


def telemetry(prefix: str, *commands: str) -> dict:
    tool = shutil.which("dpdk-telemetry.py")
    if not tool:
        pytest.skip("dpdk-telemetry.py not installed (Debian package dpdk-dev)")
    r = subprocess.run([sys.executable, tool, "-f", prefix], input="\n".join(commands) + "\n",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            out.update(json.loads(line))
    return out


def test_telemetry_shows_the_pyflow_counters(running):
    t = telemetry(running["prefix"], "/", "/pyflow/counters", "/pyflow/pipes", "/pyflow/entries,2", "/pyflow/miss",
                  "/ethdev/list")
    assert {"/pyflow/counters", "/pyflow/pipes", "/pyflow/entries", "/pyflow/miss"} <= set(t["/"])
    ports = t["/pyflow/counters"]
    assert ports["port1"]["device"] == "net_af_packet1" and ports["port1"]["rx_packets"] == 20
    assert ports["port0"]["device"] == "net_af_packet0" and ports["port0"]["tx_packets"] == 20
    pipes = t["/pyflow/pipes"]
    assert pipes["pipe2"]["hits"] == 20 and pipes["pipe2"]["misses"] == 10 and pipes["pipe2"]["offloaded"] == 0
    entries = t["/pyflow/entries"]
    assert len(entries) == 10 and all(e["packets"] == 2 for e in entries.values())
    assert t["/pyflow/miss"]["installed"] == 10 and t["/pyflow/miss"]["resubmitted"] == 10
    assert t["/ethdev/list"] == [0, 1]


def test_prometheus_learner_latency_and_offload_on_dpdk(running):
    """`pyflow exporter` of the DPDK instance: the install latency histogram counts the 10 learned
    flows, the miss ring (rte_ring_count) is empty, and on net_af_packet (no rte_flow) every pipe and
    entry runs in the software pipes; there is no XDP mode on dpdk."""
    from tests.netns.test_metrics import _listening, free_port, scrape

    port = free_port()
    exp = subprocess.Popen([sys.executable, "-P", "-m", "pyflow", "exporter", "--instance", running["prefix"],
                            "--listen", f"127.0.0.1:{port}", "-d", "60"], stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: _listening(port), 10), "exporter did not start"
        m = scrape(port)
    finally:
        exp.terminate()
        exp.wait(10)
    hist = "pyflow_miss_install_latency_seconds"
    assert m[("pyflow_learner_installed_total", ())] == 10
    assert m[(f"{hist}_count", ())] == 10 and m[(f"{hist}_bucket", (("le", "+Inf"),))] == 10
    assert 0 < m[(f"{hist}_sum", ())] < 10
    assert m[("pyflow_learner_queue_depth", ())] == 0
    assert {dict(k[1])["pipe"]: v for k, v in m.items() if k[0] == "pyflow_pipe_offloaded"} == \
        {"root": 0, "n2h": 0, "h2n": 0}
    learned = [v for k, v in m.items() if k[0] == "pyflow_entry_offloaded" and ("origin", "learned") in k[1]]
    assert len(learned) == 10 and not any(learned)
    assert not any(k[0] == "pyflow_port_xdp_mode" for k in m)


def test_sigint_stops_cleanly(running):
    run, prefix = running["run"], running["prefix"]
    assert run.stop(signal.SIGINT, 20.0) == 0, run.stderr[-20:]
    assert "Signal 2 received, preparing to exit..." in run.stdout
    assert any("Shutting down" in line for line in run.stderr)
    assert not any("[ERR]" in line or "Traceback" in line for line in run.stderr), run.stderr[-20:]
    assert not os.path.exists(f"/var/run/dpdk/{prefix}"), os.listdir(f"/var/run/dpdk/{prefix}")
    assert not os.path.exists(f"/run/pyflow/{prefix}.sock")
    # the veths are free again: nothing holds an AF_PACKET socket on them
    assert subprocess.run(["pgrep", "-f", f"file-prefix {prefix}"], capture_output=True).returncode == 1
