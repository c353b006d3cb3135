"""Batched resubmit: a burst of new flows goes back through the datapath in runs of frames, one
BPF_PROG_RUN per run, and still each frame exactly once, through its new entry, counted from the
pipe that missed.

The stage profile (PYFLOW_MISS_STAGES) says how the frames were resubmitted: by the batch path or
one by one. Without it these tests could not tell a batched resubmit from 2000 single ones.
"""
from __future__ import annotations

import json

from pyflow.lab import ip_add
from tests.netns.test_miss import lab, pipeline  # noqa: F401  (fixtures: one resubmit lab per module)
from tests.netns.test_miss_burst import burst, collect, far, sources  # noqa: F401
from tests.pyflow_testing import wait_until


def stage_totals(path, backend="ebpf"):
    """The handler's stage lines (one per stretch of activity and one at its stop), summed."""
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    total = {}
    for line in lines:
        if line["backend"] == backend:
            for k, v in line.items():
                if k != "backend":
                    total[k] = total.get(k, 0) + v
    return total


def test_burst_is_resubmitted_in_batches_each_frame_once(lab, far, pipeline, tmp_path, monkeypatch):
    prof = tmp_path / "stages.jsonl"
    monkeypatch.setenv("PYFLOW_MISS_STAGES", str(prof))
    flows = sources(1500, base=80)
    inst, program = pipeline(max_flows=4096)
    vf0 = next(p.id for p in program.ports if p.name == "vf0")
    uplink = next(p.id for p in program.ports if p.name == "uplink")
    sent = burst(lab, inst, program, flows)
    got = collect(far, sent, timeout=10.0)
    wait_until(lambda: inst.miss_stats()["resubmitted"] >= len(got), timeout=2.0, interval=0.02)
    stats = inst.miss_stats()
    h2n = program.pipe("h2n").id
    assert stats["ring_drops"] == 0 and stats["received"] == sent, stats
    assert stats["installed"] == sent and stats["resubmitted"] == sent, stats
    assert stats["resubmit_errors"] == 0 and stats["install_errors"] == 0, stats
    # each first packet left exactly once, rewritten by its own entry's actions
    assert sorted(s for s, *_ in got) == sorted(flows)
    assert all(d == ip_add(s, "1.1.1.1") and ip_ok and udp_ok for s, d, _, ip_ok, udp_ok in got)
    # counted once where it came in, once where it left, once on its entry: a resubmit counts
    # from the pipe that missed, never the port's rx a second time
    assert inst.counters_port(vf0)["rx_packets"] == sent
    assert inst.counters_port(uplink)["tx_packets"] == sent
    learned = sorted(info.entry.id for info in inst.entry_list(h2n, max_entries=4096) if info.entry.flags & 1)
    assert len(learned) == sent
    assert all(c[0] == 1 for c in inst.counters_entries(learned).values())
    inst.stop()
    st = stage_totals(prof)
    assert st["frames"] == sent and st["installed"] == sent, st
    assert st["resubmit_batched"] + st["resubmit_single"] == sent, st
    # the burst queued up behind the handler: most of it went back in batches
    assert st["resubmit_batched"] > sent // 2, st
    assert st["wakeups"] < sent, st


def test_batch_with_each_flow_twice_counts_each_frame_once(lab, far, pipeline, tmp_path, monkeypatch):
    prof = tmp_path / "stages.jsonl"
    monkeypatch.setenv("PYFLOW_MISS_STAGES", str(prof))
    flows = sources(800, base=90)
    inst, program = pipeline(max_flows=4096)
    sent = burst(lab, inst, program, flows, copies=2)
    got = collect(far, sent, timeout=10.0)
    wait_until(lambda: inst.miss_stats()["resubmitted"] >= inst.miss_stats()["received"], timeout=2.0, interval=0.02)
    stats = inst.miss_stats()
    assert stats["installed"] == len(flows), stats
    assert stats["resubmitted"] == stats["received"] and stats["resubmit_errors"] == 0, stats
    assert len(got) == sent
    seqs = {}
    for src, _, seq, *_ in got:
        seqs.setdefault(src, []).append(seq)
    # both copies of every flow left, once each (their order is test_miss_burst's: here a copy that
    # arrived after its flow's install may rightly overtake the first one's resubmit)
    bad = {s: v for s, v in seqs.items() if sorted(v) != [2 * flows.index(s), 2 * flows.index(s) + 1]}
    assert not bad and len(seqs) == len(flows), (len(bad), list(bad.items())[:5], stats)
    h2n = program.pipe("h2n").id
    learned = sorted(info.entry.id for info in inst.entry_list(h2n, max_entries=4096) if info.entry.flags & 1)
    assert all(c[0] == 2 for c in inst.counters_entries(learned).values())
    inst.stop()
    st = stage_totals(prof)
    assert st["resubmit_batched"] > 0 and st["resubmit_batched"] + st["resubmit_single"] == stats["resubmitted"], st
