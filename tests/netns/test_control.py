"""The control API under load: one connection for many requests, batched installs from a file.

A three-host lab with a pipe routing on ipv4.dst. `pyflow entry add --from-file` installs a batch that
then forwards real frames; a file with one bad line is refused with a one-line error naming that line,
and none of its entries are installed; a batch the datapath cannot hold is undone as a whole.
"""
from __future__ import annotations

import json
import os

import pytest

from pyflow.control import ControlClient
from pyflow.errors import ConfigError
from pyflow.lab import Capture, eth, ipv4_udp, payload_tag
from tests.pyflow_testing import counters_json, tag_seqs, wait_until

DPORT = 6000
BATCH = 40          # entries per file: 10.0.1.0 .. 10.0.1.39, alternating h2 / h3
CAPACITY = 48       # the routing pipe's max_entries: room for one batch, not for two


def routing_config(lab, name: str = "control-test", capacity: int = CAPACITY) -> dict:
    return {
        "name": name,
        "ports": [{"name": "p1", "id": 1}, {"name": "p2", "id": 2}, {"name": "p3", "id": 3}],
        "pipes": [
            {"name": "l3", "type": "basic", "root": True, "match": ["ipv4.dst"], "fwd_miss": "drop",
             "actions": ["eth.dst"], "max_entries": capacity,
             "entries": [{"name": "to_h2", "match": {"ipv4.dst": "10.0.0.2"},
                          "actions": {"eth.dst": lab.host("h2").mac}, "fwd": "port:p2"}]},
        ],
    }


def batch_lines(lab, base: str, count: int) -> list[dict]:
    """Entries for base.0 .. base.(count-1); even ones go to h2, odd ones to h3 (both line formats)."""
    lines = []
    for i in range(count):
        host, port = ("h2", "p2") if i % 2 == 0 else ("h3", "p3")
        spec = {"name": f"r-{base}.{i}", "match": {"ipv4.dst": f"{base}.{i}"},
                "actions": {"eth.dst": lab.host(host).mac}, "fwd": f"port:{port}"}
        lines.append({"pipe": "l3", "entry": spec} if i % 3 else {"pipe": "l3", **spec})
    return lines


def write_jsonl(path, lines: list[dict], raw: dict[int, str] | None = None) -> None:
    """raw: 1-based line number -> text to put there instead (to plant a bad line)."""
    text = [json.dumps(line) for line in lines]
    for number, replacement in (raw or {}).items():
        text[number - 1] = replacement
    path.write_text("# generated for the control API test\n" + "\n".join(text) + "\n")


def runtime_names(pyflow_cli, instance: str) -> set[str]:
    rows = json.loads(pyflow_cli("entry", "list", "--instance", instance, "-o", "json").stdout)
    return {r["name"] for r in rows if r["origin"] == "runtime"}


def test_batch_from_file_forwards_and_bad_lines_apply_nothing(three_host_lab, instance_name, pyflow_run, pyflow_cli,
                                                              tmp_path):
    lab = three_host_lab
    cfg = tmp_path / "routing.json"
    cfg.write_text(json.dumps(routing_config(lab)))
    pyflow_run("--backend", "ebpf", "-j", str(cfg), *lab.port_args(), "--instance", instance_name,
               "--stats-interval", "5", "--fresh")
    inst = ["--instance", instance_name]

    # 1. A file with one bad line (line 1 is a comment, so entries[5] sits on line 7): one line of
    #    error naming that line and the field, exit 2, nothing installed.
    bad = tmp_path / "bad.jsonl"
    lines = batch_lines(lab, "10.0.1", BATCH)
    broken = dict(lines[5]) if "entry" not in lines[5] else {"pipe": "l3", **lines[5]["entry"]}
    broken["match"] = {"ipv4.dst": "10.0.1.300"}
    write_jsonl(bad, lines, {6: json.dumps(broken)})
    r = pyflow_cli("entry", "add", *inst, "--from-file", str(bad), check=False)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"{bad} line 7" in r.stderr and "ipv4.dst" in r.stderr
    assert runtime_names(pyflow_cli, instance_name) == set()

    # Not JSON at all: refused before anything is sent, with the line named.
    write_jsonl(bad, lines, {3: "{not json"})
    r = pyflow_cli("entry", "add", *inst, "--from-file", str(bad), check=False)
    assert r.returncode == 2 and f"{bad} line 4: not JSON" in r.stderr and len(r.stderr.strip().splitlines()) == 1

    # 2. The good file: every entry lands in one request and forwards real traffic.
    good = tmp_path / "good.jsonl"
    write_jsonl(good, lines)
    out = json.loads(pyflow_cli("entry", "add", *inst, "--from-file", str(good), "-o", "json").stdout)
    assert out["added"] == BATCH and out["replaced"] == 0 and len({e["id"] for e in out["entries"]}) == BATCH
    assert runtime_names(pyflow_cli, instance_name) == {f"r-10.0.1.{i}" for i in range(BATCH)}

    h1 = lab.host("h1")
    frames = [eth(h1.root_mac, h1.mac, 0x0800, ipv4_udp("10.0.0.1", f"10.0.1.{i}", payload_tag("b", i), dport=DPORT))
              for i in range(BATCH)]
    sent_before = counters_json(instance_name)["ports"]
    with Capture(lab, "h2") as cap2, Capture(lab, "h3") as cap3:
        lab.send_frames("h1", frames)
        assert wait_until(lambda: len(tag_seqs(cap2.frames, "b")) + len(tag_seqs(cap3.frames, "b")) == BATCH)
        # nothing more is on its way: the datapath sent out exactly these
        sent = counters_json(instance_name)["ports"]
        assert [sent[p]["tx_packets"] - sent_before[p]["tx_packets"] for p in ("p2", "p3")] == [BATCH // 2] * 2
        assert sorted(tag_seqs(cap2.frames, "b")) == list(range(0, BATCH, 2))
        assert sorted(tag_seqs(cap3.frames, "b")) == list(range(1, BATCH, 2))

    # 3. The same names again without replace: refused, names the first clashing line, changes nothing.
    r = pyflow_cli("entry", "add", *inst, "--from-file", str(good), check=False)
    assert r.returncode == 2 and f"{good} line 2" in r.stderr and "already exists" in r.stderr

    # 4. A second batch that the pipe cannot hold (48 slots, 41 used): the datapath refuses an entry
    #    part-way; the entries added before it are removed again.
    more = tmp_path / "more.jsonl"
    write_jsonl(more, batch_lines(lab, "10.0.2", BATCH))
    r = pyflow_cli("entry", "add", *inst, "--from-file", str(more), check=False)
    assert r.returncode != 0 and "nothing from this request was applied" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert runtime_names(pyflow_cli, instance_name) == {f"r-10.0.1.{i}" for i in range(BATCH)}

    # 5. --replace on the whole file moves every entry to the other host, in one request.
    swapped = [dict(line) for line in lines]
    for i, line in enumerate(swapped):
        spec = line["entry"] if "entry" in line else line
        spec["actions"] = {"eth.dst": lab.host("h3" if i % 2 == 0 else "h2").mac}
        spec["fwd"] = "port:p3" if i % 2 == 0 else "port:p2"
    write_jsonl(good, swapped)
    out = json.loads(pyflow_cli("entry", "add", *inst, "--from-file", str(good), "--replace", "-o", "json").stdout)
    assert out["added"] == 0 and out["replaced"] == BATCH
    with Capture(lab, "h2") as cap2, Capture(lab, "h3") as cap3:
        lab.send_frames("h1", [eth(h1.root_mac, h1.mac, 0x0800,
                                   ipv4_udp("10.0.0.1", f"10.0.1.{i}", payload_tag("s", i), dport=DPORT))
                               for i in range(BATCH)])
        assert wait_until(lambda: len(tag_seqs(cap2.frames, "s")) + len(tag_seqs(cap3.frames, "s")) == BATCH)
        assert sorted(tag_seqs(cap3.frames, "s")) == list(range(0, BATCH, 2))


def test_one_connection_carries_many_requests(three_host_lab, instance_name, pyflow_run, tmp_path):
    lab = three_host_lab
    cfg = tmp_path / "routing.json"
    cfg.write_text(json.dumps(routing_config(lab)))
    pyflow_run("--backend", "ebpf", "-j", str(cfg), *lab.port_args(), "--instance", instance_name,
               "--stats-interval", "5", "--fresh")
    mac = lab.host("h2").mac
    with ControlClient(instance_name) as client:
        for i in range(20):
            r = client.request("entry_add", pipe="l3", entry={"name": f"one-{i}", "match": {"ipv4.dst": f"10.0.3.{i}"},
                                                               "actions": {"eth.dst": mac}, "fwd": "port:p2"})
            assert r["name"] == f"one-{i}" and r["replaced"] is False
        # an error does not end the connection
        with pytest.raises(ConfigError, match="already exists"):
            client.request("entry_add", pipe="l3", entry={"name": "one-0", "match": {"ipv4.dst": "10.0.3.0"}})
        # a batch with an error names its index, and nothing of it lands
        items = [{"pipe": "l3", "entry": {"name": f"two-{i}", "match": {"ipv4.dst": f"10.0.4.{i}"},
                                          "actions": {"eth.dst": mac}, "fwd": "port:p2"}} for i in range(5)]
        items[3]["entry"]["fwd"] = "port:nope"
        with pytest.raises(ConfigError) as info:
            client.request("entry_add", entries=items)
        assert info.value.index == 3 and "entries[3]" in str(info.value)
        rows = client.request("entry_list", pipe="l3")
        assert {r["name"] for r in rows} == {"to_h2"} | {f"one-{i}" for i in range(20)}
        for i in range(20):
            client.request("entry_del", name=f"one-{i}")
        assert [r["name"] for r in client.request("entry_list", pipe="l3")] == ["to_h2"]
    assert os.path.exists(f"/run/pyflow/{instance_name}.sock")


class RefusingInstance:
    """Stands in for a datapath that accepts `room` adds and then refuses (its table full)."""

    def __init__(self, room: int):
        import errno

        from pyflow.errors import NativeError

        self.room, self.next_id, self.live = room, 100, {}
        self.full = NativeError(-errno.ENOSPC, "pipe 2: entry table full")

    def entry_add(self, pipe_id, mask_idx, prefixlen, match, entry):
        if len(self.live) >= self.room:
            raise self.full
        self.next_id += 1
        self.live[self.next_id] = bytes(match.ipv4_dst)
        return self.next_id

    def entry_del(self, entry_id):
        del self.live[entry_id]

    def entry_replace(self, entry_id, pipe_id, mask_idx, prefixlen, match, entry):
        if entry_id not in self.live:
            raise KeyError(entry_id)
        self.live[entry_id] = bytes(match.ipv4_dst)


def test_a_batch_the_datapath_refuses_part_way_is_undone():
    """No root needed: the controller against a datapath that fills up in the middle of a batch."""
    from pyflow.controller import Controller, RunOptions, load_and_compile

    opts = RunOptions(backend="dpdk", config_path="-", ports={"p1": "0", "p2": "1", "p3": "2"})
    ctl = Controller(opts)
    cfg_path = os.path.join(os.path.dirname(__file__), "_control_unit.json")
    lab = _MacsOnly()
    config = routing_config(lab)
    config["pipes"][0].pop("max_entries")
    try:
        with open(cfg_path, "w") as fh:
            json.dump(config, fh)
        ctl.cfg, ctl.bindings, ctl.program = load_and_compile(cfg_path, "dpdk", opts.ports)
    finally:
        os.unlink(cfg_path)
    inst = ctl.instance = RefusingInstance(room=6)
    ctl.program.entry_ids = {"to_h2": inst.entry_add(0, 0, 0, _Fields("10.0.0.2"), None)}
    from pyflow.controller import counter_layout

    ctl.layout = counter_layout("t", ctl.cfg, ctl.program)
    ctl.installed_masks = {p.id: [p.mask_bytes(i) for i in range(p.nmasks)] for p in ctl.program.pipes}
    handlers = ctl.handlers()
    first = [_as_item(line) for line in batch_lines(lab, "10.0.5", 3)]
    assert handlers["entry_add"]({"entries": first})["added"] == 3
    before = dict(inst.live)

    # replaces r-10.0.5.0 and adds 4 more: the datapath takes two of them, refuses the third
    second = [dict(first[0], replace=True)] + [_as_item(line) for line in batch_lines(lab, "10.0.6", 4)]
    with pytest.raises(ConfigError) as info:
        handlers["entry_add"]({"entries": second})
    assert info.value.index == 3 and "nothing from this request was applied" in str(info.value)
    assert sorted(inst.live.values()) == sorted(before.values())   # the replaced entry is back, the new ones gone
    assert set(ctl.runtime_entries) == {f"r-10.0.5.{i}" for i in range(3)}
    assert ctl._pipe_counts()["l3"] == 4


class _Fields:
    def __init__(self, dst: str):
        import ipaddress

        self.ipv4_dst = ipaddress.IPv4Address(dst).packed


class _MacsOnly:
    """The one thing routing_config() asks of a lab: each host's MAC."""

    def host(self, name: str):
        return type("Host", (), {"mac": f"02:00:00:00:00:0{name[-1]}"})()


def _as_item(line: dict) -> dict:
    """A file line (either form) as a control API batch item."""
    spec = line["entry"] if "entry" in line else {k: v for k, v in line.items() if k != "pipe"}
    return {"pipe": line["pipe"], "entry": spec}
