"""Part 2: flow setup — new flows/s through miss -> install -> resubmit, and first-packet latency.

Every new flow is one frame with a fresh ipv4.src. The generator stamps each source's send time and the
sink its first arrival (both bpf_ktime_get_ns, so one clock): latency = arrival - send of the very first
packet, which has to survive the miss, the install and the resubmit to arrive at all.
  burst: setup_flows new flows as fast as the generator goes -> flows/s delivered and the share delivered
  paced: 1 new flow per ms -> the latency distribution of an unloaded miss path
pyflow's miss handlers run with PYFLOW_MISS_STAGES set: each repeat records where the handler's time went
(rx batch, decide, install, resubmit, tx; clock deltas summed over the burst and the paced flows of the repeat).
"""
from __future__ import annotations

import json
import os
import time

from .common import log, percentile, summary
from .lab import GEN_IF, SINK_IF
from .ovs import OvsUserspace
from .traffic import FLOW_DST, Generator, Sink, read_stamps, udp_frame

PACED_INTERVAL_US = 1000


class OvsLearn(OvsUserspace):
    """OVS userspace whose first packet of each source takes the upcall: a learn() rule, like pyflow's policy."""

    def setup(self, lab, flows):
        super().setup(lab, [])
        rule = ("table=0,priority=10,ip,in_port=1,actions=load:2->NXM_NX_REG0[],"
                "learn(table=0,priority=100,in_port=1,eth_type=0x800,NXM_OF_IP_SRC[],output:NXM_NX_REG0[]),output:2")
        self.daemons.ofctl("add-flow", "pfbovs0", rule)


def _setup_systems(ctx):
    from .ovs import ensure_installed
    from .pyflow_dpdk import PyflowDpdkSetup
    from .pyflow_systems import PyflowEbpf
    from .pyflow_doca import PyflowDocaSetup
    systems = [PyflowEbpf(ctx.workdir), PyflowDpdkSetup(ctx.workdir), PyflowDocaSetup(ctx.workdir)]
    if not ctx.args.no_ovs:
        why = ensure_installed()
        for port_type in ("system", "afxdp"):
            s = OvsLearn(ctx.ovs_daemons, port_type)
            s.label += " (upcall)"
            if why:
                s.unavailable = lambda why=why: why
            systems.append(s)
    return systems


def _wait_quiet(sink: Sink, settle: float = 0.3, limit: float = 5.0) -> dict:
    last = sink.read()
    deadline = time.time() + limit
    while time.time() < deadline:
        time.sleep(settle)
        now = sink.read()
        if now["packets"] == last["packets"]:
            return now
        last = now
    return last


def _one(ctx, system, nflows: int, src_base: str, interval_us: int) -> dict:
    gen, sink = Generator(ctx.lab), Sink(ctx.lab)
    sent_path = os.path.join(ctx.workdir, "sent.txt")
    if os.path.exists(sent_path):
        os.unlink(sent_path)
    sink.configure(FLOW_DST, record_first=True)
    frame = udp_frame(system.dst_mac(ctx.lab), ctx.lab.mac[GEN_IF], src_base, FLOW_DST, 64)
    gen.send(frame, count=nflows, nflows=nflows, src_base=src_base, record_sent=sent_path,
             interval_us=interval_us, batch=16)
    _wait_quiet(sink)
    sent, seen = read_stamps(sent_path), sink.first_seen()
    lat = sorted((seen[s] - t) / 1e3 for s, t in sent.items() if s in seen)
    out = {"sent": len(sent), "delivered": len(lat), "latencies_us": lat}
    if sent and seen:
        span = (max(seen.values()) - min(sent.values())) / 1e9
        out["flows_per_s"] = len(lat) / span if span > 0 else None
    sink.configure(FLOW_DST, record_first=False)
    return out


STAGES = ("rx", "decide", "install", "resubmit", "tx", "resubmit_cpu", "datapath", "learn_cpu")


def _read_stages(path: str) -> list[dict]:
    """The stage lines the miss handlers appended to path (one per handler stop), with per-frame means in us."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as fh:
        for line in fh:
            try:
                st = json.loads(line)
            except ValueError:
                continue
            frames = st.get("frames") or 0
            if frames:
                st["per_frame_us"] = {k: st.get(f"{k}_ns", 0) / frames / 1e3 for k in STAGES}
            out.append(st)
    os.unlink(path)
    return out


def run_setup(ctx) -> dict:
    res = {"burst_flows": ctx.args.setup_flows, "paced_flows": min(1000, ctx.args.setup_flows),
           "paced_interval_us": PACED_INTERVAL_US, "systems": {}}
    for system in _setup_systems(ctx):
        e = res["systems"][system.name] = {"label": system.label, "description": system.description,
                                           "bursts": [], "paced": []}
        why = system.unavailable()
        if why:
            e["skipped"] = why
            log(f"setup {system.name}: skipped: {why}")
            continue
        stages_path = os.path.join(ctx.workdir, f"stages-{system.name}.jsonl")
        e["stages"] = []
        os.environ["PYFLOW_MISS_STAGES"] = stages_path
        for rep in range(ctx.args.repeats):
            try:
                if hasattr(system, "entries_via"):
                    system.setup(ctx.lab, [], learn=False, capacity=2 * ctx.args.setup_flows + 1000)
                else:
                    system.setup(ctx.lab, [])
                burst = _one(ctx, system, ctx.args.setup_flows, f"10.{100 + rep}.0.1", 0)
                paced = _one(ctx, system, res["paced_flows"], f"10.{200 + rep}.0.1", PACED_INTERVAL_US)
                e["bursts"].append({k: v for k, v in burst.items() if k != "latencies_us"})
                e["paced"].append(paced)
                log(f"setup rep {rep + 1} {system.name:18s} burst {burst.get('flows_per_s') or 0:8.0f} flows/s "
                    f"({burst['delivered']}/{burst['sent']} delivered); paced p50 "
                    f"{percentile(paced['latencies_us'], 50) or 0:.0f} us ({paced['delivered']}/{paced['sent']})")
            except Exception as exc:
                e["skipped"] = f"{type(exc).__name__}: {exc}"
                log(f"setup {system.name}: skipped: {e['skipped']}")
                break
            finally:
                try:
                    system.teardown(ctx.lab)
                except Exception as exc:
                    log(f"setup {system.name}: teardown: {exc}")
                for st in _read_stages(stages_path):
                    e["stages"].append(st)
                    us = st.get("per_frame_us", {})
                    log(f"setup rep {rep + 1} {system.name:18s} handler: {st.get('frames')} frames in "
                        f"{st.get('wakeups')} wakeups; us/frame " + " ".join(f"{k} {us.get(k, 0):.2f}" for k in STAGES))
        os.environ.pop("PYFLOW_MISS_STAGES", None)
        e["rate"] = summary([b.get("flows_per_s") for b in e["bursts"]])
        sent = sum(b["sent"] for b in e["bursts"])
        e["delivered_frac"] = sum(b["delivered"] for b in e["bursts"]) / sent if sent else None
        lat = sorted(x for p in e["paced"] for x in p["latencies_us"])
        e["latencies_us"] = lat
        psent = sum(p["sent"] for p in e["paced"])
        e["paced_delivered_frac"] = len(lat) / psent if psent else None
        e["latency_us"] = {"p50": percentile(lat, 50), "p99": percentile(lat, 99), "max": lat[-1] if lat else None,
                           "n": len(lat)}
        for p in e["paced"]:
            p.pop("latencies_us", None)
    return res
