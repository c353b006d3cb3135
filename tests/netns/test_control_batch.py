"""Batched entry_add requests over the control socket of a running pyflow (ebpf), all or nothing.

A three-host lab with a basic pipe routing on ipv4.dst. A batch with a bad entry in the middle, a
name or a match repeated within it, or more entries than the pipe holds is refused with the JSON path
of the entry at fault and installs nothing; a good batch gets distinct ids, forwards real frames,
counts them per entry and is listed as it was sent.
"""
from __future__ import annotations

import json

import pytest

from pyflow.control import ControlClient
from pyflow.errors import ConfigError
from pyflow.lab import Capture, eth, ipv4_udp, payload_tag
from tests.netns.test_control import routing_config
from tests.pyflow_testing import tag_seqs, wait_until

CAPACITY = 64


def _config(lab) -> dict:
    return routing_config(lab, "control-batch", CAPACITY)


def _items(lab, base: str, count: int) -> list[dict]:
    """base.0 .. base.(count-1): even ones to h2, odd ones to h3."""
    out = []
    for i in range(count):
        host, port = ("h2", "p2") if i % 2 == 0 else ("h3", "p3")
        out.append({"pipe": "l3", "entry": {"name": f"b-{base}.{i}", "match": {"ipv4.dst": f"{base}.{i}"},
                                            "actions": {"eth.dst": lab.host(host).mac}, "fwd": f"port:{port}"}})
    return out


def _names(client) -> set[str]:
    return {r["name"] for r in client.request("entry_list", pipe="l3")}


def test_batches_are_all_or_nothing_and_land_whole(three_host_lab, instance_name, pyflow_run, tmp_path):
    lab = three_host_lab
    cfg = tmp_path / "batch.json"
    cfg.write_text(json.dumps(_config(lab)))
    pyflow_run("--backend", "ebpf", "-j", str(cfg), *lab.port_args(), "--instance", instance_name,
               "--stats-interval", "5", "--fresh")
    with ControlClient(instance_name) as client:
        # 1. a bad value in the middle: the JSON path of the entry and field, nothing installed
        items = _items(lab, "10.0.1", 40)
        items[17]["entry"]["match"]["ipv4.dst"] = "10.0.1.300"
        with pytest.raises(ConfigError) as info:
            client.request("entry_add", entries=items)
        assert info.value.index == 17
        assert str(info.value).startswith("entries[17].match.ipv4.dst: "), str(info.value)
        assert "10.0.1.300" in str(info.value) and "b-10.0.1.17" in str(info.value)
        assert _names(client) == {"to_h2"}

        # an action the pipe does not allow, near the end
        items = _items(lab, "10.0.1", 40)
        items[38]["entry"]["actions"] = {"ipv4.src": "1.2.3.4"}
        with pytest.raises(ConfigError) as info:
            client.request("entry_add", entries=items)
        assert info.value.index == 38 and str(info.value).startswith("entries[38].actions.ipv4.src: ")
        assert _names(client) == {"to_h2"}

        # 2. repeated within the batch: a name, then a match under two names
        items = _items(lab, "10.0.1", 10)
        items[6]["entry"]["name"] = items[2]["entry"]["name"]
        with pytest.raises(ConfigError, match=r"appears twice in this request \(first as entries\[2\]\)") as info:
            client.request("entry_add", entries=items)
        assert info.value.index == 6
        items = _items(lab, "10.0.1", 10)
        items[8]["entry"]["match"] = dict(items[3]["entry"]["match"])
        with pytest.raises(ConfigError, match="same match as") as info:
            client.request("entry_add", entries=items)
        assert info.value.index == 8
        assert _names(client) == {"to_h2"}

        # 3. more than the pipe holds (64, one used): refused before anything is installed
        with pytest.raises(ConfigError, match=r"pipe l3 is full .*nothing from this request was applied") as info:
            client.request("entry_add", entries=_items(lab, "10.0.2", CAPACITY))
        assert info.value.index == CAPACITY - 1
        assert _names(client) == {"to_h2"}

        # 4. a good batch: distinct ids, listed as sent, forwarding and counted per entry
        result = client.request("entry_add", entries=_items(lab, "10.0.1", 40))
        assert result["added"] == 40 and result["replaced"] == 0
        ids = [e["id"] for e in result["entries"]]
        assert len(set(ids)) == 40 and [e["name"] for e in result["entries"]] == [f"b-10.0.1.{i}" for i in range(40)]
        rows = {r["name"]: r for r in client.request("entry_list", pipe="l3")}
        assert set(rows) == {"to_h2"} | {f"b-10.0.1.{i}" for i in range(40)}
        assert rows["b-10.0.1.33"]["match"] == {"ipv4.dst": "10.0.1.33"} and rows["b-10.0.1.33"]["fwd"] == "port:p3"
        assert all(rows[f"b-10.0.1.{i}"]["origin"] == "runtime" and rows[f"b-10.0.1.{i}"]["id"] == ids[i]
                   for i in range(40))

        h1 = lab.host("h1")
        sent = [0, 1, 2, 3, 39]
        frames = [eth(h1.root_mac, h1.mac, 0x0800, ipv4_udp("10.0.0.1", f"10.0.1.{i}", payload_tag("c", i),
                                                            dport=6000)) for i in sent]
        with Capture(lab, "h2") as cap2, Capture(lab, "h3") as cap3:
            lab.send_frames("h1", frames)
            assert wait_until(lambda: len(tag_seqs(cap2.frames, "c")) + len(tag_seqs(cap3.frames, "c")) == len(sent))
        assert sorted(tag_seqs(cap2.frames, "c")) == [0, 2] and sorted(tag_seqs(cap3.frames, "c")) == [1, 3, 39]
        assert wait_until(lambda: all(r["packets"] == (1 if int(r["name"].rsplit(".", 1)[1]) in sent else 0)
                                      for r in client.request("entry_list", pipe="l3") if r["name"] != "to_h2"))

        # 5. the same names again: refused as a whole, the installed ones untouched
        with pytest.raises(ConfigError, match="already exists") as info:
            client.request("entry_add", entries=_items(lab, "10.0.1", 3) + _items(lab, "10.0.3", 2))
        assert info.value.index == 0
        assert len(_names(client)) == 41

        # 6. the pipe holds 23 more: exactly that fits, the next one does not
        assert client.request("entry_add", entries=_items(lab, "10.0.4", CAPACITY - 41))["added"] == CAPACITY - 41
        with pytest.raises(ConfigError, match="is full"):
            client.request("entry_add", entries=_items(lab, "10.0.5", 1))
        assert len(_names(client)) == CAPACITY
