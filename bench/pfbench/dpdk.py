"""Part 4: DPDK on one lcore, vdev ports: dpdk-testpmd io / mac forwarding (and pyflow's software pipes).

Port 0 is net_pcap replaying the seed's frames from memory forever (infinite_rx), port 1 is net_null
(drops on tx, no rx), so the only work measured is rx -> forward -> tx on one forwarding lcore.
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
    tx = [int(v) for v in re.findall(r"Tx-pps:\s+(\d+)", out)][1::2]
    rates = [v for v in tx[1:] if v > 0]
    if not rates:
        raise RuntimeError(f"testpmd gave no rates: {out.strip()[-300:]}")
    rates.sort()
    return rates[len(rates) // 2]


def run_dpdk(ctx) -> dict:
    if not shutil.which("dpdk-testpmd"):
        return {"skipped": "dpdk-testpmd is not installed (Debian package dpdk)"}
    pcap = os.path.join(ctx.workdir, "seed-flows.pcap")
    frames = [udp_frame("02:00:00:00:00:02", "02:00:00:00:00:01", src, FLOW_DST, 64) for src in flow_sources(ctx.args.flows)]
    write_pcap(pcap, frames)
    systems = {
        "testpmd-io": {"label": "dpdk-testpmd io", "runs": []},
        "testpmd-mac": {"label": "dpdk-testpmd mac", "runs": []},
        "pyflow-dpdk": {"label": "pyflow DPDK software pipes", "runs": []},
    }
    try:
        from pyflow.native import backend_available
        ok, why = backend_available("dpdk")
        systems["pyflow-dpdk"]["skipped"] = (f"pyflow backend dpdk: {why}" if not ok else
                                             "pyflow's DPDK software-pipe rate is not wired into this suite yet")
    except Exception as exc:
        systems["pyflow-dpdk"]["skipped"] = f"pyflow is not importable ({exc})"
    duration = max(2.0, ctx.args.duration * 2)
    for rep in range(ctx.args.repeats):
        for name, mode in (("testpmd-io", "io"), ("testpmd-mac", "mac")):
            e = systems[name]
            if e.get("skipped"):
                continue
            try:
                pps = testpmd(pcap, mode, duration, ctx.workdir)
                e["runs"].append(pps)
                log(f"dpdk rep {rep + 1} {name}: {pps / 1e6:.3f} Mpps")
            except Exception as exc:
                e["skipped"] = f"{type(exc).__name__}: {exc}"
                log(f"dpdk {name}: skipped: {e['skipped']}")
    for e in systems.values():
        e["pps"] = summary(e["runs"])
    return {"systems": systems, "duration": duration}
