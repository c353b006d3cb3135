"""Rendering of a metrics state (pyflow/metrics.py) with prometheus_client: the XDP mode is the
one each port got, the install latency is a cumulative histogram in seconds."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pyflow.metrics import StateCollector


def state():
    buckets = [0] * 18
    buckets[3], buckets[10], buckets[17] = 2, 1, 1        # <= 8 us, <= 1.024 ms, above 65.536 ms
    return {"instance": "t", "backend": "ebpf", "entries": [], "pipes": {}, "learner": {},
            "ports": {"a": {}, "b": {}}, "xdp_modes": {"a": "native", "b": "generic"},
            "learner_timing": {"queue_depth": 7, "install_latency_sum_ns": 70_000_000,
                               "install_latency_buckets": buckets}}


def samples():
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StateCollector(state))
    text = generate_latest(reg).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_xdp_mode_per_port_and_latency_histogram():
    m = samples()
    modes = {dict(k[1])["port"]: dict(k[1])["mode"] for k in m if k[0] == "pyflow_port_xdp_mode"}
    assert modes == {"a": "native", "b": "generic"}
    h = "pyflow_miss_install_latency_seconds"
    b = {dict(k[1])["le"]: v for k, v in m.items() if k[0] == f"{h}_bucket"}
    assert (b["4e-06"], b["8e-06"], b["0.001024"], b["0.065536"], b["+Inf"]) == (0, 2, 3, 3, 4)
    assert m[(f"{h}_count", (("instance", "t"),))] == 4 and m[(f"{h}_sum", (("instance", "t"),))] == 0.07
    assert m[("pyflow_learner_queue_depth", (("instance", "t"),))] == 7
