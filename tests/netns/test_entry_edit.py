"""`pyflow entry list` shows matches as users write them; `entry add --replace` changes an entry in place.

A wildcarded field is absent (text: `*` when nothing is matched), a prefix reads 10.0.0.0/8, another mask
VALUE/0xMASK. Replacing keeps the entry's id, origin and counters (ovs-ofctl mod-flows), also when the
match changes; --reset-counters starts them again from zero.
"""
from __future__ import annotations

import json

from tests.netns.test_static import N, exchange, frames_for, tagged
from tests.pyflow_testing import wait_until


def edit_config(lab) -> dict:
    h2, h3 = lab.host("h2"), lab.host("h3")
    return {
        "name": "edit-test",
        "ports": [{"name": "p1", "id": 1}, {"name": "p2", "id": 2}, {"name": "p3", "id": 3}],
        "pipes": [
            {"name": "acl", "type": "control", "root": True, "match": ["ipv4.src", "ipv4.dst", "l4.dport", "meta.mark"],
             "fwd_miss": "pipe:route",
             "entries": [
                 {"name": "no_telnet", "match": {"l4.dport": 23}, "fwd": "drop"},
                 {"name": "nets_to_h3", "match": {"ipv4.src": "10.0.0.0/8", "ipv4.dst": "10.0.0.3"},
                  "fwd": "pipe:route"},
                 {"name": "odd_marks", "match": {"meta.mark": {"value": 1, "mask": 1}}, "fwd": "drop"},
             ]},
            {"name": "route", "type": "lpm", "match": ["ipv4.dst"], "actions": ["eth.dst"], "fwd_miss": "drop",
             "entries": [{"name": "to_h2", "match": {"ipv4.dst": "10.0.0.2/32"},
                          "actions": {"eth.dst": h2.mac}, "fwd": "port:p2"},
                         {"name": "to_h3", "match": {"ipv4.dst": "10.0.0.0/24"},
                          "actions": {"eth.dst": h3.mac}, "fwd": "port:p3"}]},
        ],
    }


def rows(pyflow_cli, instance: str) -> dict[str, dict]:
    out = pyflow_cli("entry", "list", "--instance", instance, "-o", "json").stdout
    return {r["name"]: r for r in json.loads(out)}


def test_entry_list_shows_wildcards_prefixes_and_masks(three_host_lab, instance_name, pyflow_run, pyflow_cli,
                                                       tmp_path):
    lab = three_host_lab
    cfg = tmp_path / "edit.json"
    cfg.write_text(json.dumps(edit_config(lab)))
    pyflow_run("--backend", "ebpf", "-j", str(cfg), *lab.port_args(), "--instance", instance_name, "--fresh")
    listed = rows(pyflow_cli, instance_name)
    assert listed["no_telnet"]["match"] == {"l4.dport": "23"}
    assert listed["nets_to_h3"]["match"] == {"ipv4.src": "10.0.0.0/8", "ipv4.dst": "10.0.0.3"}
    assert listed["odd_marks"]["match"] == {"meta.mark": "1/0x1"}
    assert listed["to_h2"]["match"] == {"ipv4.dst": "10.0.0.2/32"}
    assert listed["to_h3"]["match"] == {"ipv4.dst": "10.0.0.0/24"}
    text = pyflow_cli("entry", "list", "--instance", instance_name).stdout
    assert "=0.0.0.0" not in text and "l4.dport=0" not in text
    assert "ipv4.src=10.0.0.0/8, ipv4.dst=10.0.0.3 -> pipe:route" in text


def send_one(lab, tag: str, host: str) -> None:
    """N frames from h1 to 10.0.0.2: all of them reach `host`, each once."""
    h1 = lab.host("h1")
    tagged(exchange(lab, [("h1", frames_for(tag, "10.0.0.1", "10.0.0.2", N, h1.root_mac, h1.mac))], [(host, tag)]),
           host, tag)


def test_replace_keeps_id_origin_and_counters(three_host_lab, instance_name, pyflow_run, pyflow_cli, tmp_path):
    lab = three_host_lab
    h2, h3 = lab.host("h2"), lab.host("h3")
    cfg = tmp_path / "edit.json"
    cfg.write_text(json.dumps(edit_config(lab)))
    pyflow_run("--backend", "ebpf", "-j", str(cfg), *lab.port_args(), "--instance", instance_name, "--fresh")
    inst = ["--instance", instance_name]
    before = rows(pyflow_cli, instance_name)["to_h2"]

    send_one(lab, "one", "h2")
    assert wait_until(lambda: rows(pyflow_cli, instance_name)["to_h2"]["packets"] == N)

    # same match, new actions: frames to .2 now go to h3
    out = pyflow_cli("entry", "add", *inst, "route", "to_h2", "--replace", "--match", "ipv4.dst=10.0.0.2/32",
                     "--action", f"eth.dst={h3.mac}", "--fwd", "port:p3", "-o", "json").stdout
    assert json.loads(out)["id"] == before["id"] and json.loads(out)["replaced"] is True
    after = rows(pyflow_cli, instance_name)["to_h2"]
    assert (after["id"], after["origin"], after["packets"], after["fwd"]) == (before["id"], "config", N, "port:p3")
    send_one(lab, "two", "h3")
    assert wait_until(lambda: rows(pyflow_cli, instance_name)["to_h2"]["packets"] == 2 * N)

    # a new match moves the same id, counters and all, to the new key
    pyflow_cli("entry", "add", *inst, "route", "to_h2", "--replace", "--match", "ipv4.dst=10.0.0.2/31",
               "--action", f"eth.dst={h2.mac}", "--fwd", "port:p2")
    moved = rows(pyflow_cli, instance_name)["to_h2"]
    assert (moved["id"], moved["origin"], moved["packets"], moved["match"]) == \
        (before["id"], "config", 2 * N, {"ipv4.dst": "10.0.0.2/31"})
    send_one(lab, "three", "h2")
    assert wait_until(lambda: rows(pyflow_cli, instance_name)["to_h2"]["packets"] == 3 * N)

    # a replacement cannot take another entry's match; nothing changes
    clash = pyflow_cli("entry", "add", *inst, "route", "to_h2", "--replace", "--match", "ipv4.dst=10.0.0.0/24",
                       "--fwd", "port:p2", check=False)
    assert clash.returncode != 0 and len(clash.stderr.strip().splitlines()) == 1, clash.stderr
    assert rows(pyflow_cli, instance_name)["to_h2"]["match"] == {"ipv4.dst": "10.0.0.2/31"}

    # --reset-counters: the other behaviour, on request
    pyflow_cli("entry", "add", *inst, "route", "to_h2", "--replace", "--reset-counters", "--match",
               "ipv4.dst=10.0.0.2/31", "--action", f"eth.dst={h2.mac}", "--fwd", "port:p2")
    assert rows(pyflow_cli, instance_name)["to_h2"]["packets"] == 0
    bad = pyflow_cli("entry", "add", *inst, "route", "x", "--reset-counters", "--match", "ipv4.dst=10.0.0.9/32",
                     check=False)
    assert bad.returncode == 2 and "--reset-counters" in bad.stderr
