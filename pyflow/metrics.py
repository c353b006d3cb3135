"""Prometheus metrics of a running instance.

`pyflow run --metrics ADDR:PORT` serves /metrics from the running process; `pyflow exporter`
serves them for an instance that is already running, reading over its control socket (the
"metrics" op). Both render the same state dict (collect_state) with prometheus_client, on each
scrape: the counters are read in bulk from the C core when Prometheus asks, never per packet.

Names follow the Prometheus conventions: pyflow_ prefix, _total for counters, base units
(bytes, seconds), one label per dimension.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import time

from .errors import UsageError

log = logging.getLogger("pyflow.metrics")
XDP_MODE_NAMES = {0: "auto", 1: "native", 2: "generic", 3: "offload"}


def parse_listen(text: str, flag: str = "--listen") -> tuple[str, int]:
    m = re.fullmatch(r"\[?([0-9a-fA-F:.]+|localhost)\]?:(\d{1,5})", text or "")
    if not m or not 0 < int(m.group(2)) < 65536:
        raise UsageError(f"{flag}: expected ADDR:PORT (e.g. 127.0.0.1:9464), got {text!r}")
    addr = m.group(1)
    if addr != "localhost":
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            raise UsageError(f"{flag}: {addr!r} is not an IP address") from None
    return addr, int(m.group(2))


# ---------------------------------------------------------------------------
# State: everything a scrape shows, as plain JSON (so it can cross the control socket).

def collect_state(ctl) -> dict:
    """Counters and table state of the controller's instance (runs in the pyflow run process)."""
    from . import counters as counters_mod

    timing = ctl.instance.miss_timing()       # first: the queue depth is a gauge of this instant
    snap = counters_mod.to_json(ctl.snapshot())
    entries = ctl._op_entry_list({})
    info = ctl.instance.info()
    pipes = {}
    fill: dict[str, int] = {}
    for e in entries:
        fill[e["pipe"]] = fill.get(e["pipe"], 0) + 1
    pipe_ids = {p.name: p.id for p in ctl.program.pipes}
    for p in ctl.cfg.pipes:
        c = snap["pipes"].get(p.name, {})
        pipes[p.name] = {"type": p.type, "domain": p.domain, "hits": c.get("hits", 0), "misses": c.get("misses", 0),
                         "entries": fill.get(p.name, 0), "capacity": p.max_entries or 0,
                         "offloaded": int(ctl.instance.pipe_offloaded(pipe_ids[p.name]))
                         if p.name in pipe_ids else 0}
    offloaded = ctl.instance.entries_offloaded([e["id"] for e in entries])
    xdp_default = XDP_MODE_NAMES.get(info.get("xdp_mode"), str(info.get("xdp_mode")))
    state = {"instance": ctl.instance_name, "backend": ctl.opts.backend, "time": time.time(),
             "entries": [{**{k: e[k] for k in ("pipe", "name", "origin", "packets", "bytes")},
                          "offloaded": int(offloaded.get(e["id"], False))} for e in entries],
             "pipes": pipes, "ports": snap["ports"], "learner": snap["miss_handler"],
             "learner_timing": timing,
             # the mode each port got: with --xdp-mode auto a port may fall back to generic alone
             "xdp_modes": {name: ctl.xdp_modes.get(name) or xdp_default for name in snap["ports"]}
             if ctl.opts.backend == "ebpf" else None,
             "port_bindings": dict(ctl.bindings)}
    try:
        state["dpi"] = ctl.instance.counters_dpi()
    except Exception:      # a backend without DPI counters
        state["dpi"] = None
    from .seedcounters import mpls_counters

    state["mpls"] = mpls_counters(ctl, entries)
    return state


# ---------------------------------------------------------------------------
# Rendering with prometheus_client.

class StateCollector:
    """A prometheus_client collector that asks state_fn() on every scrape."""

    def __init__(self, state_fn):
        self.state_fn = state_fn

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        try:
            s = self.state_fn()
        except Exception as exc:
            log.warning("metrics: cannot read the instance: %s", exc)
            up = GaugeMetricFamily("pyflow_up", "1 when the instance answered this scrape")
            up.add_metric([], 0)
            yield up
            return
        inst = s["instance"]
        up = GaugeMetricFamily("pyflow_up", "1 when the instance answered this scrape", labels=["instance"])
        up.add_metric([inst], 1)
        yield up
        info = GaugeMetricFamily("pyflow_instance_info", "The running instance", labels=["instance", "backend"])
        info.add_metric([inst, s["backend"]], 1)
        yield info

        ep = CounterMetricFamily("pyflow_entry_packets", "Frames that hit an entry",
                                 labels=["instance", "pipe", "entry", "origin"])
        eb = CounterMetricFamily("pyflow_entry_bytes", "Bytes of the frames that hit an entry",
                                 labels=["instance", "pipe", "entry", "origin"])
        for e in s["entries"]:
            lab = [inst, e["pipe"], e["name"], e["origin"]]
            ep.add_metric(lab, e["packets"])
            eb.add_metric(lab, e["bytes"])
        yield ep
        yield eb

        hits = CounterMetricFamily("pyflow_pipe_hits", "Lookups of a pipe that found an entry",
                                   labels=["instance", "pipe"])
        misses = CounterMetricFamily("pyflow_pipe_misses", "Lookups of a pipe that found none",
                                     labels=["instance", "pipe"])
        used = GaugeMetricFamily("pyflow_pipe_entries", "Entries installed in a pipe", labels=["instance", "pipe"])
        cap = GaugeMetricFamily("pyflow_pipe_capacity_entries", "max_entries of a pipe (0: the instance's table size)",
                                labels=["instance", "pipe"])
        for name, p in s["pipes"].items():
            hits.add_metric([inst, name], p["hits"])
            misses.add_metric([inst, name], p["misses"])
            used.add_metric([inst, name], p["entries"])
            cap.add_metric([inst, name], p["capacity"])
        off = GaugeMetricFamily("pyflow_pipe_offloaded",
                                "1 when a pipe's rules are in the NIC (dpdk rte_flow, doca), 0 in software "
                                "(dpdk software pipes, ebpf XDP)", labels=["instance", "pipe"])
        for name, p in s["pipes"].items():
            off.add_metric([inst, name], p.get("offloaded", 0))
        eoff = GaugeMetricFamily("pyflow_entry_offloaded", "1 when an entry has its rule in the NIC on every port",
                                 labels=["instance", "pipe", "entry", "origin"])
        for e in s["entries"]:
            eoff.add_metric([inst, e["pipe"], e["name"], e["origin"]], e.get("offloaded", 0))
        yield from (hits, misses, used, cap, off, eoff)

        names = {"rx_packets": ("pyflow_port_receive_packets", "Frames received on a port"),
                 "rx_bytes": ("pyflow_port_receive_bytes", "Bytes received on a port"),
                 "tx_packets": ("pyflow_port_transmit_packets", "Frames sent from a port"),
                 "tx_bytes": ("pyflow_port_transmit_bytes", "Bytes sent from a port")}
        fams = {k: CounterMetricFamily(n, h, labels=["instance", "port"]) for k, (n, h) in names.items()}
        drops = CounterMetricFamily("pyflow_port_drops", "Frames dropped, by ingress port and reason",
                                    labels=["instance", "port", "reason"])
        mode = GaugeMetricFamily("pyflow_port_xdp_mode", "XDP attach mode of a port (1 for the mode in use)",
                                 labels=["instance", "port", "mode"])
        for port, c in s["ports"].items():
            for k, fam in fams.items():
                fam.add_metric([inst, port], c.get(k, 0))
            for reason, n in c.get("drops", {}).items():
                drops.add_metric([inst, port, reason], n)
            if s.get("xdp_modes") and s["xdp_modes"].get(port):
                mode.add_metric([inst, port, s["xdp_modes"][port]], 1)
        yield from fams.values()
        yield drops
        if s.get("xdp_modes"):
            yield mode

        learner = s.get("learner") or {}
        for k, v in learner.items():
            fam = CounterMetricFamily(f"pyflow_learner_{k}", f"Miss handler: {k.replace('_', ' ')}",
                                      labels=["instance"])
            fam.add_metric([inst], v)
            yield fam
        timing = s.get("learner_timing")
        if timing:
            from .instance import MISS_LATENCY_BOUNDS

            depth = GaugeMetricFamily("pyflow_learner_queue_depth",
                                      "Missed frames waiting for the miss handler (AF_XDP rx rings / miss ring)",
                                      labels=["instance"])
            depth.add_metric([inst], timing["queue_depth"])
            yield depth
            lat = HistogramMetricFamily("pyflow_miss_install_latency_seconds",
                                        "Time from the miss handler receiving a frame to its entry being installed",
                                        labels=["instance"])
            cum, buckets = 0, []
            for bound, n in zip(list(MISS_LATENCY_BOUNDS) + [float("inf")], timing["install_latency_buckets"]):
                cum += n
                buckets.append((floatToGoString(bound), cum))
            lat.add_metric([inst], buckets, timing["install_latency_sum_ns"] / 1e9)
            yield lat

        if s.get("dpi"):
            frames = CounterMetricFamily("pyflow_dpi_frames", "MPEG-TS datagrams classified, by frame class",
                                         labels=["instance", "class"])
            dropped = CounterMetricFamily("pyflow_dpi_dropped_frames",
                                          "MPEG-TS datagrams dropped by drop_pct, by frame class",
                                          labels=["instance", "class"])
            for cls, n in s["dpi"]["frames"].items():
                frames.add_metric([inst, cls], n)
            for cls, n in s["dpi"]["dropped"].items():
                dropped.add_metric([inst, cls], n)
            yield frames
            yield dropped

        if s.get("mpls"):
            mp = CounterMetricFamily("pyflow_mpls_packets", "Frames given a label stack, by prefix and stack",
                                     labels=["instance", "pipe", "prefix", "labels"])
            mb = CounterMetricFamily("pyflow_mpls_bytes", "Bytes of frames given a label stack",
                                     labels=["instance", "pipe", "prefix", "labels"])
            for r in s["mpls"]:
                lab = [inst, r["pipe"], r["prefix"], r["labels"]]
                mp.add_metric(lab, r["packets"])
                mb.add_metric(lab, r["bytes"])
            yield mp
            yield mb


def _serve(state_fn, listen: str):
    from prometheus_client import CollectorRegistry, start_http_server

    addr, port = parse_listen(listen)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(state_fn))
    try:
        result = start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:
        raise UsageError(f"metrics: cannot listen on {listen}: {exc.strerror}") from None
    server = result[0] if isinstance(result, tuple) else None
    log.info("Prometheus metrics on http://%s:%d/metrics", addr, port)
    return server


def serve_local(ctl, listen: str):
    """In `pyflow run`: scrapes read the instance directly (under the control server's lock)."""
    def state():
        with ctl.server._lock:
            return collect_state(ctl)

    return _serve(state, listen)


def serve_remote(instance: str, listen: str, duration: float | None) -> None:
    """`pyflow exporter`: scrapes ask the running instance over its control socket."""
    import signal
    import threading

    from .control import ControlClient

    ControlClient(instance).request("status")   # fail now, in one line, if it is not running
    server = _serve(lambda: ControlClient(instance).request("metrics"), listen)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait(duration)
    if server is not None:
        server.shutdown()
