"""Part 4: DPDK on one forwarding lcore, vdev ports: pyflow's software pipes vs dpdk-testpmd io / mac.

Port 0 is net_pcap replaying the resubmit example's frames from memory forever (infinite_rx), port 1 is net_null
(drops on tx, no rx), so the only work measured is rx -> forward -> tx on one forwarding lcore. All three
systems get the same EAL arguments, the same two vdevs and the same pcap, interleaved in every repetition.

pyflow runs as `pyflow run --backend dpdk` on the packet-resubmit pipeline (conf/resubmit.json): vf0 is the pcap
port, uplink the null port. The first frame of each flow misses h2n, the miss handler learns the entry and
resubmits; once every flow is learned, the rate is read from pyflow's own per-second counter lines.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import time

from .common import log, summary
from .pyflow_dpdk import PyflowDpdkRun, learned_count, learned_hits, port_tx
from .pyflow_systems import bench_config, pyflow_problem
from .traffic import FLOW_DST, flow_sources, udp_frame

EAL = ["--no-huge", "-m", "512", "--no-pci", "--no-telemetry", "--log-level=lib.eal:error"]


def write_pcap(path: str, frames: list[bytes]) -> None:
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for f in frames:
            fh.write(struct.pack("<IIII", 0, 0, len(f), len(f)) + f)


def testpmd(pcap: str, mode: str, duration: float, workdir: str) -> float:
    """Median Tx-pps of the null port over the stats periods after the first."""
    prefix = f"pfb{os.getpid()}"
    cmd = ["dpdk-testpmd", "-l", "0,1", *EAL, f"--file-prefix={prefix}",
           "--vdev", f"net_pcap0,rx_pcap={pcap},infinite_rx=1", "--vdev", "net_null0,no-rx=1",
           "--", f"--forward-mode={mode}", "--nb-cores=1", "--stats-period=1", "--txq=1", "--rxq=1",
           "--total-num-mbufs=16384"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            cwd=workdir)
    try:
        time.sleep(duration + 2.5)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    # stats blocks print port 0 then port 1; the null port's Tx-pps is every second "Tx-pps:" value
    shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
    tx = [int(v) for v in re.findall(r"Tx-pps:\s+(\d+)", out)][1::2]
    rates = [v for v in tx[1:] if v > 0]
    if not rates:
        raise RuntimeError(f"testpmd gave no rates: {out.strip()[-300:]}")
    rates.sort()
    return rates[len(rates) // 2]


def pyflow_swpipes(pcap: str, flows: int, duration: float, workdir: str, seq: int) -> dict:
    """Median per-second Tx rate of the uplink (null) port once every flow is learned, as testpmd's."""
    prefix = f"pfb{os.getpid()}p{seq}"
    eal = ["-l", "0,1", *EAL, f"--file-prefix={prefix}",
           "--vdev", f"net_pcap0,rx_pcap={pcap},infinite_rx=1", "--vdev", "net_null0,no-rx=1"]
    run = PyflowDpdkRun(bench_config(workdir, flows), prefix, {"vf0": "net_pcap0", "uplink": "net_null0"}, eal,
                        stats_interval=1.0, cwd=workdir)
    try:
        learned = run.wait_for(lambda s: learned_count(s) >= flows, timeout=60)
        snaps = [learned] + run.next_snapshots(int(round(duration)) + 1, timeout=duration + 30)
    finally:
        code = run.stop()
    rates, hits = [], []
    for a, b in zip(snaps, snaps[1:]):
        seconds = b["time"] - a["time"]
        sent = port_tx(b, "uplink") - port_tx(a, "uplink")
        if seconds > 0 and sent > 0:
            rates.append(sent / seconds)
            hits.append((learned_hits(b) - learned_hits(a)) / sent)
    # the first interval after learning may still hold start-up; drop it like testpmd's first period
    rates, hits = (rates[1:], hits[1:]) if len(rates) > 2 else (rates, hits)
    if not rates:
        raise RuntimeError(f"pyflow gave no rates (exit {code}): {' | '.join(run.stderr[-3:])}")
    miss = snaps[-1].get("miss_handler", {})
    return {"pps": sorted(rates)[len(rates) // 2], "learned_hit_frac": min(hits), "learned": learned_count(snaps[-1]),
            "miss_received": miss.get("received"), "resubmitted": miss.get("resubmitted"), "exit": code}


def run_dpdk(ctx) -> dict:
    if not shutil.which("dpdk-testpmd"):
        return {"skipped": "dpdk-testpmd is not installed (Debian package dpdk)"}
    pcap = os.path.join(ctx.workdir, "resubmit-flows.pcap")
    frames = [udp_frame("02:00:00:00:00:02", "02:00:00:00:00:01", src, FLOW_DST, 64) for src in flow_sources(ctx.args.flows)]
    write_pcap(pcap, frames)
    systems = {
        "testpmd-io": {"label": "dpdk-testpmd io", "runs": []},
        "testpmd-mac": {"label": "dpdk-testpmd mac", "runs": []},
        "pyflow-dpdk": {"label": "pyflow DPDK software pipes", "runs": []},  # packet resubmit, learned entries
    }
    why = pyflow_problem("dpdk")
    if why:
        systems["pyflow-dpdk"]["skipped"] = why
    duration = max(2.0, ctx.args.duration * 2)
    for rep in range(ctx.args.repeats):
        for name, mode in (("testpmd-io", "io"), ("testpmd-mac", "mac"), ("pyflow-dpdk", None)):
            e = systems[name]
            if e.get("skipped"):
                continue
            try:
                if mode:
                    pps = testpmd(pcap, mode, duration, ctx.workdir)
                else:
                    detail = pyflow_swpipes(pcap, len(frames), duration, ctx.workdir, rep)
                    e.setdefault("details", []).append(detail)
                    pps = detail["pps"]
                e["runs"].append(pps)
                log(f"dpdk rep {rep + 1} {name}: {pps / 1e6:.3f} Mpps")
            except Exception as exc:
                e["skipped"] = f"{type(exc).__name__}: {exc}"
                log(f"dpdk {name}: skipped: {e['skipped']}")
    for e in systems.values():
        e["pps"] = summary(e["runs"])
    details = systems["pyflow-dpdk"].get("details")
    if details:
        systems["pyflow-dpdk"]["learned"] = min(d["learned"] for d in details)
        systems["pyflow-dpdk"]["learned_hit_frac"] = min(d["learned_hit_frac"] for d in details)
    return {"systems": systems, "duration": duration, "flows": len(frames)}
