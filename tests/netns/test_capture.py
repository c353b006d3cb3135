"""`pyflow capture` on a running instance while real frames cross it: the file opens in tcpdump,
holds exactly the frames of the chosen point / pipe / entry, as they were at that point, and
the count / duration limits end the capture."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys

import pytest

from pyflow.control import ControlClient
from pyflow.frames import build_frame, read_pcap
from tests.netns.portlab import PortLab
from tests.pyflow_testing import PyflowRun, counters_json, pyflow_cli, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PIN_ROOT = "/sys/fs/bpf/pyflow"
TO_H2 = "ipv4.src=10.0.0.1 ipv4.dst=10.0.0.2 l4.dport=7000"
TO_H3 = "ipv4.src=10.0.0.1 ipv4.dst=10.0.0.3 l4.dport=7000"
DROPPED = "ipv4.src=10.0.0.1 ipv4.dst=10.0.0.66"


@pytest.fixture
def static_run(unique_prefix):
    lab = PortLab(unique_prefix, ["p1", "p2", "p3"])
    inst = f"{unique_prefix}-cap"
    run = PyflowRun(["--backend", "ebpf", "-j", os.path.join(ROOT, "conf", "static-forward.json"), *lab.port_args(),
                     "--instance", inst, "--fresh", "--stats-interval", "5"])
    try:
        run.ready()
        yield lab, inst
    finally:
        run.stop()
        lab.down()
        shutil.rmtree(os.path.join(PIN_ROOT, inst), ignore_errors=True)


def start_capture(inst: str, *args: str) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-P", "-m", "pyflow", "capture", "--instance", inst, *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # armed once the instance reports a capture running (or the command already failed)
    wait_until(lambda: p.poll() is not None or ControlClient(inst).request("capture_stats")["running"], 15,
               what="the capture to start")
    return p


def tcpdump(path: str) -> list[str]:
    r = subprocess.run(["tcpdump", "-nn", "-r", path], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return [line for line in r.stdout.splitlines() if line.strip()]


def pcapng_comments(path: str) -> list[str]:
    """opt_comment of every enhanced packet block."""
    data = open(path, "rb").read()
    pos, out = 0, []
    while pos + 12 <= len(data):
        btype, blen = struct.unpack_from("<II", data, pos)
        if btype == 6:
            caplen = struct.unpack_from("<I", data, pos + 20)[0]
            opt = pos + 28 + caplen + (-caplen % 4)
            while opt < pos + blen - 4:
                code, olen = struct.unpack_from("<HH", data, opt)
                if code == 0:
                    break
                if code == 1:
                    out.append(data[opt + 4:opt + 4 + olen].decode())
                opt += 4 + olen + (-olen % 4)
        pos += blen
    return out


def test_egress_capture_in_pcap_stops_at_count(static_run, tmp_path):
    lab, inst = static_run
    path = str(tmp_path / "egress.pcap")
    cap = start_capture(inst, "-w", path, "--at", "egress", "-c", "5", "--format", "pcap")
    frames = lab.capture(["p2"])
    lab.send("p1", [build_frame(TO_H2 + f" l4.sport={1000 + i}") for i in range(10)])
    frames.wait({"p2": 10})
    arrived = frames.stop()["p2"]
    assert cap.wait(15) == 0, cap.stderr.read()
    lines = tcpdump(path)
    assert len(lines) == 5 and all("10.0.0.1.100" in line and "> 10.0.0.2.7000" in line for line in lines), lines
    # what was captured at egress is what left: the rewritten frames, byte for byte
    assert read_pcap(path) == arrived[:5]


def test_pipe_hit_capture_filtered_by_entry_in_pcapng(static_run, tmp_path):
    lab, inst = static_run
    path = str(tmp_path / "hits.pcapng")
    cap = start_capture(inst, "-w", path, "--at", "hit:l3", "--entry", "h1_to_h3_mpls", "-d", "3")
    to_h3 = [build_frame(TO_H3 + f" l4.sport={2000 + i}") for i in range(4)]
    lab.send("p1", [build_frame(TO_H2)] * 3 + to_h3)
    assert cap.wait(15) == 0, cap.stderr.read()
    assert len(tcpdump(path)) == 4
    # at the hit, before the entry's actions: the frames as sent, no MPLS label yet
    assert read_pcap(path) == to_h3
    comments = pcapng_comments(path)
    assert len(comments) == 4 and all(c.startswith("pyflow hit port=1 pipe=") and " entry=" in c for c in comments)


def test_drop_capture_names_the_reason_and_capture_is_off_afterwards(static_run, tmp_path):
    lab, inst = static_run
    path = str(tmp_path / "drops.pcapng")
    cap = start_capture(inst, "-w", path, "--at", "drop", "--at", "ingress", "-d", "3")
    lab.send("p1", [build_frame(DROPPED)] * 2 + [build_frame(TO_H2)])
    assert cap.wait(15) == 0, cap.stderr.read()
    comments = pcapng_comments(path)
    assert sorted(c.split(" ")[1] for c in comments) == ["drop", "drop", "ingress", "ingress", "ingress"]
    assert all(c.endswith("reason=action") for c in comments if " drop " in c)
    assert len(tcpdump(path)) == 5
    # the capture ended: frames sent now are in no file, and a new capture starts cleanly
    size = os.path.getsize(path)
    dropped = counters_json(inst)["ports"]["p1"]["drops"]["action"]
    lab.send("p1", [build_frame(DROPPED)])
    wait_until(lambda: counters_json(inst)["ports"]["p1"]["drops"]["action"], until=lambda n: n > dropped,
               what="the datapath to drop the frame")
    assert os.path.getsize(path) == size
    second = str(tmp_path / "again.pcap")
    cap = start_capture(inst, "-w", second, "--at", "ingress", "-c", "1", "--format", "pcap")
    lab.send("p1", [build_frame(TO_H2)])
    assert cap.wait(15) == 0
    assert wait_until(lambda: len(read_pcap(second)) == 1, 10)


def test_capture_errors_are_one_line(static_run, tmp_path):
    _lab, inst = static_run
    for args, needle in ((["--at", "hit:nope"], "no pipe 'nope'"), (["--at", "sideways"], "--at sideways"),
                         (["--entry", "nope"], "no entry 'nope'"), (["-c", "0"], "--count 0")):
        r = pyflow_cli("capture", "--instance", inst, "-w", str(tmp_path / "x.pcap"), *args, check=False)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, (args, r.stderr)
