"""Counter rendering: the resubmit example's line byte for byte, the JSON form, learned-entry names."""
from __future__ import annotations

import ipaddress
import json

from pyflow import counters as c

DOCA_EXAMPLE_LINE = ("Static Entry Counters: root_host_to_net_vf0: 10, rss_pipe: 11, ; egress entry counters: "
             "192.168.99.101-flow: 1, 192.168.99.102-flow: 1, ; Pipe Miss counters: 11,")


def _example_snapshot() -> c.Snapshot:
    return c.Snapshot(
        instance="resubmit",
        static_entries=[c.EntryCount("root_host_to_net_vf0", 10, 640, "root")],
        miss_paths=[c.EntryCount("rss_pipe", 11, 0, "h2n")],
        learned_entries=[c.EntryCount("192.168.99.101-flow", 1, 64, "h2n"),
                         c.EntryCount("192.168.99.102-flow", 1, 64, "h2n")],
        pipe_misses=[c.EntryCount("h2n", 11, 0, "h2n")],
        pipes={"root": {"hits": 10, "misses": 0}, "h2n": {"hits": 2, "misses": 11}},
        ports=[c.PortCount("vf0", 11, 704, 0, 0, {r: 0 for r in c.DROP_REASONS}),
               c.PortCount("uplink", 0, 0, 2, 128, {r: (3 if r == "tx_fail" else 0) for r in c.DROP_REASONS})],
        miss_handler={"received": 11, "installed": 2},
    )


def test_line_matches_the_doca_example_format():
    assert c.format_line(_example_snapshot()) == DOCA_EXAMPLE_LINE


def test_line_with_nothing_learned_yet():
    snap = c.Snapshot(static_entries=[c.EntryCount("root_host_to_net_vf0", 0)],
                      miss_paths=[c.EntryCount("rss_pipe", 1)], pipe_misses=[c.EntryCount("h2n", 1)])
    assert c.format_line(snap) == ("Static Entry Counters: root_host_to_net_vf0: 0, rss_pipe: 1, ; "
                                   "egress entry counters: ; Pipe Miss counters: 1,")


def test_several_pipes_with_misses():
    snap = c.Snapshot(pipe_misses=[c.EntryCount("a", 3), c.EntryCount("b", 0)])
    assert c.format_line(snap).endswith("; Pipe Miss counters: 3, 0,")


def test_json_is_stable_and_round_trips():
    snap = _example_snapshot()
    data = json.loads(json.dumps(c.to_json(snap)))
    assert data["schema"] == c.JSON_SCHEMA_VERSION
    assert set(data) >= {"instance", "time", "static_entries", "miss_paths", "learned_entries", "pipe_misses",
                         "pipes", "ports", "miss_handler"}
    assert data["ports"]["uplink"]["drops"]["tx_fail"] == 3
    assert data["learned_entries"][0] == {"name": "192.168.99.101-flow", "packets": 1, "bytes": 64, "pipe": "h2n"}
    assert c.format_line(c.from_json(data)) == DOCA_EXAMPLE_LINE


def test_detail_view_names_drop_reasons():
    text = c.format_detail(_example_snapshot())
    assert "tx_fail=3" in text
    assert "uplink" in text and "h2n" in text and "received=11" in text


def test_learned_names_from_the_policy_template():
    src = int(ipaddress.IPv4Address("192.168.99.101"))
    assert c.render_entry_name("{ipv4.src}-flow", {"ipv4.src": src}) == "192.168.99.101-flow"
    assert c.template_fields("{ipv4.src}->{l4.dport}") == ["ipv4.src", "l4.dport"]
    # An unknown placeholder stays visible rather than silently vanishing.
    assert c.render_entry_name("{bogus.x}-flow", {}) == "{bogus.x}-flow"


def test_learned_names_sort_by_address():
    names = ["192.168.99.110-flow", "192.168.99.9-flow", "192.168.99.101-flow", "zeta"]
    assert sorted(names, key=c.ipv4_sort_key) == ["192.168.99.9-flow", "192.168.99.101-flow",
                                                  "192.168.99.110-flow", "zeta"]


def test_field_values_read_from_the_shared_struct():
    from pyflow.compiler import decode_fields
    from pyflow.native import ffi

    f = ffi.new("struct pf_fields *")
    f.ipv4_src = int.from_bytes(ipaddress.IPv4Address("192.168.99.105").packed, "little")  # network order in memory
    f.port = 7
    f.l4_dport = int.from_bytes((4789).to_bytes(2, "big"), "little")
    assert decode_fields(f, ["ipv4.src", "meta.port", "l4.dport"]) == {
        "ipv4.src": int(ipaddress.IPv4Address("192.168.99.105")), "meta.port": 7, "l4.dport": 4789}
