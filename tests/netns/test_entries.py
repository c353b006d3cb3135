"""Entries added, changed and removed through `pyflow entry` while traffic flows.

A sender streams numbered frames from h1 to 10.0.0.2 (an entry that is never
touched), 10.0.0.3 and 10.0.0.9 while entries change under it. Frames of the
untouched entry must all arrive, in order, exactly once. Then SIGTERM stops
pyflow cleanly with its pins kept (--keep-datapath), and a second run re-adopts them.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time

from pyflow.control import socket_path
from pyflow.lab import Capture, UdpSink, eth, ipv4_udp, payload_tag
from tests.pyflow_testing import tag_seqs, wait_until

DPORT = 6000
RATE_GAP = 0.004   # ~250 frames/s per destination: enough to see a gap, light on 2 shared cores


def entries_config(lab) -> dict:
    h2, h3 = lab.host("h2"), lab.host("h3")
    return {
        "name": "entries-test",
        "ports": [{"name": "p1", "id": 1}, {"name": "p2", "id": 2}, {"name": "p3", "id": 3}],
        "pipes": [
            {"name": "l3", "type": "basic", "root": True, "match": ["ipv4.dst"], "fwd_miss": "drop",
             "actions": ["eth.dst", "eth.src"],
             "entries": [
                 {"name": "to_h2", "match": {"ipv4.dst": "10.0.0.2"}, "actions": {"eth.dst": h2.mac},
                  "fwd": "port:p2"},
                 {"name": "to_h3", "match": {"ipv4.dst": "10.0.0.3"}, "actions": {"eth.dst": h3.mac},
                  "fwd": "port:p3"}]},
        ],
    }


class Sender(threading.Thread):
    """Round-robin frames to each destination, numbered per destination."""

    def __init__(self, lab, dests: list[str]):
        super().__init__(daemon=True)
        self.lab, self.dests = lab, dests
        self.sent = {d: 0 for d in dests}
        self.stop_event = threading.Event()
        h1 = lab.host("h1")
        self.src_mac, self.dst_mac = h1.mac, h1.root_mac

    def run(self):
        import socket

        h1 = self.lab.host("h1")
        with self.lab.socket("h1", socket.AF_PACKET, socket.SOCK_RAW, 0) as s:
            s.bind((h1.ifname, 0))
            while not self.stop_event.is_set():
                for d in self.dests:
                    seq = self.sent[d]
                    tag = d.rsplit(".", 1)[1]
                    s.send(eth(self.dst_mac, self.src_mac, 0x0800,
                               ipv4_udp("10.0.0.1", d, payload_tag(tag, seq), dport=DPORT, ident=seq)))
                    self.sent[d] = seq + 1
                time.sleep(RATE_GAP)

    def finish(self):
        self.stop_event.set()
        self.join(timeout=5)


def test_entries_change_under_traffic(three_host_lab, instance_name, pyflow_run, pyflow_cli, read_counters,
                                      tmp_path):
    lab = three_host_lab
    h2, h3 = lab.host("h2"), lab.host("h3")
    cfg = tmp_path / "entries.json"
    cfg.write_text(json.dumps(entries_config(lab)))
    run_args = ["--backend", "ebpf", "-j", str(cfg), *lab.port_args(), "--instance", instance_name,
                "--stats-interval", "1"]
    run = pyflow_run(*run_args, "--fresh", "--keep-datapath")
    inst = ["--instance", instance_name]

    sinks = [UdpSink(lab, h, DPORT) for h in ("h2", "h3")]
    cap2, cap3 = Capture(lab, "h2"), Capture(lab, "h3")
    sender = Sender(lab, ["10.0.0.2", "10.0.0.3", "10.0.0.9"])
    sender.start()
    try:
        assert wait_until(lambda: len(tag_seqs(cap3.frames, "3")) > 20)
        assert tag_seqs(cap3.frames, "9") == []          # no entry for .9 yet

        # add: .9 starts arriving at h3
        out = pyflow_cli("entry", "add", *inst, "l3", "to_h9", "--match", "ipv4.dst=10.0.0.9",
                         "--action", f"eth.dst={h3.mac}", "--fwd", "port:p3", "-o", "json")
        assert json.loads(out.stdout)["replaced"] is False
        assert wait_until(lambda: len(tag_seqs(cap3.frames, "9")) > 20)

        # change: .3 now goes to h2
        pyflow_cli("entry", "add", *inst, "l3", "to_h3", "--replace", "--match", "ipv4.dst=10.0.0.3",
                   "--action", f"eth.dst={h2.mac}", "--fwd", "port:p2")
        assert wait_until(lambda: len(tag_seqs(cap2.frames, "3")) > 20)
        moved_at = len(tag_seqs(cap3.frames, "3"))

        # remove: .9 stops arriving; every frame to .9 from this seq on was sent after the delete returned
        pyflow_cli("entry", "del", *inst, "to_h9")
        nine_cut = sender.sent["10.0.0.9"] + 1

        # a bad entry is refused with the field named, and changes nothing
        bad = pyflow_cli("entry", "add", *inst, "l3", "broken", "--match", "ipv4.dst=10.0.0.300", check=False)
        assert bad.returncode == 2 and "ipv4.dst" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1

        listing = json.loads(pyflow_cli("entry", "list", *inst, "-o", "json").stdout)
        # 20 frames to .9 after the cut went through the datapath: each round sends .2 after the .9 before it
        wait_until(lambda: max(tag_seqs(cap2.frames, "2"), default=-1), until=lambda seq: seq > nine_cut + 20,
                   what=f"frames to .2 past seq {nine_cut + 20} at h2")
    finally:
        sender.finish()
        # what is in flight arrives: the last frames to .2 and to .3
        wait_until(lambda: (len(tag_seqs(cap2.frames, "2")),
                            len(tag_seqs(cap2.frames, "3")) + len(tag_seqs(cap3.frames, "3"))),
                   until=lambda got: got[0] >= sender.sent["10.0.0.2"] and got[1] >= sender.sent["10.0.0.3"])
        cap2.stop()
        cap3.stop()
        for s in sinks:
            s.close()

    # The untouched entry lost nothing: every frame to .2, in order, once.
    twos = tag_seqs(cap2.frames, "2")
    assert twos == list(range(sender.sent["10.0.0.2"])), f"lost/reordered {sender.sent['10.0.0.2'] - len(twos)}"
    # After the change no frame to .3 reached h3 any more; after the delete none to .9.
    assert len(tag_seqs(cap3.frames, "3")) == moved_at
    assert all(seq < nine_cut for seq in tag_seqs(cap3.frames, "9")), f"frames to .9 from seq {nine_cut} on reached h3"
    # Frames to .3 went to exactly one host each.
    threes = sorted(tag_seqs(cap2.frames, "3") + tag_seqs(cap3.frames, "3"))
    assert len(threes) == len(set(threes))

    # to_h3 was changed in place: still the config's entry
    assert {(r["name"], r["origin"]) for r in listing} == {("to_h2", "config"), ("to_h3", "config")}
    # the last frame sent (to .9) is dropped: p1's counter shows when it was taken in
    wait_until(lambda: read_counters(instance_name)[0]["ports"]["p1"]["rx_packets"],
               until=lambda n: n >= sum(sender.sent.values()), what=f"p1 to take in all {sum(sender.sent.values())}")
    snap, packets = read_counters(instance_name)
    assert packets["to_h2"] == sender.sent["10.0.0.2"]
    assert snap["ports"]["p1"]["rx_packets"] == sum(sender.sent.values())

    # SIGTERM with --keep-datapath: clean stop, control socket gone, pins kept.
    assert run.stop(signal.SIGTERM) == 0
    assert "Signal 15 received, preparing to exit..." in run.stdout
    assert not os.path.exists(socket_path(instance_name))
    assert os.path.isdir(f"/sys/fs/bpf/pyflow/{instance_name}")

    # A second run re-adopts the pinned state, and traffic flows again.
    again = pyflow_run(*run_args)
    assert again.wait_for("Re-adopted", 5)
    sink = UdpSink(lab, "h2", DPORT)
    with Capture(lab, "h2") as cap:
        h1 = lab.host("h1")
        lab.send_frames("h1", [eth(h1.root_mac, h1.mac, 0x0800, ipv4_udp("10.0.0.1", "10.0.0.2",
                                                                        payload_tag("again", i), dport=DPORT))
                               for i in range(10)])
        assert wait_until(lambda: len(tag_seqs(cap.frames, "again")) == 10)
    sink.close()
    assert again.stop(signal.SIGINT) == 0
    # without --keep-datapath a clean stop takes the instance's pins away
    assert not os.path.exists(f"/sys/fs/bpf/pyflow/{instance_name}")
