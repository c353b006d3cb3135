"""Runtime entries encoded in one pass against the pipe's field table (pyflow.config.packed) give the
bytes the full path (schema, semantic checks, compiler) gives, and whatever the full path would refuse
or treat differently is handed back to it (None)."""
from __future__ import annotations

import copy

import pytest

from pyflow.compiler import compile_program
from pyflow.config import load_config
from pyflow.config.packed import PackedPipe, pack_entries
from pyflow.entries import EntryBatch
from pyflow.errors import ConfigError
from pyflow.native import ffi

BASE = {
    "name": "packed",
    "ports": [{"name": "p1", "id": 1}, {"name": "p2", "id": 7}],
    "pipes": [
        {"name": "root", "type": "control", "root": True, "match": ["meta.port"], "fwd_miss": "drop",
         "entries": [{"name": "r1", "match": {"meta.port": "p1"}, "fwd": "pipe:l3"}]},
        {"name": "l3", "type": "basic", "match": ["ipv4.dst", "l4.dport", "ipv4.proto"], "fwd": "port:p2",
         "fwd_miss": "drop", "actions": ["eth.dst", "ipv4.src", "meta.mark", "vlan.id", "l4.sport"]},
        {"name": "v6", "type": "basic", "domain": "egress", "match": ["ipv6.src", "eth.src", "vlan.id"],
         "fwd_miss": "drop", "counters": False, "actions": ["ipv6.dst"]},
        {"name": "masked", "type": "basic", "match": [{"field": "ipv4.src", "mask": "255.255.0.0"}, "meta.port"],
         "fwd": "drop", "fwd_miss": "drop"},
        {"name": "pfx", "type": "lpm", "match": ["ipv4.dst"], "fwd": "drop", "fwd_miss": "drop"},
    ],
}

GOOD = [
    ("l3", {"name": "a", "match": {"ipv4.dst": "10.0.0.1", "l4.dport": 80, "ipv4.proto": "tcp"}}),
    ("l3", {"name": "b.1", "match": {"ipv4.dst": "10.0.0.2", "l4.dport": "0x50", "ipv4.proto": 17},
            "actions": {"eth.dst": "02:00:00:00:00:0a", "ipv4.src": "192.168.1.1", "meta.mark": 7,
                        "vlan.id": 4095, "l4.sport": "1234"}, "fwd": "port:p1"}),
    ("l3", {"name": "c-2", "match": {"ipv4.dst": "255.255.255.255", "l4.dport": 65535, "ipv4.proto": 0},
            "fwd": "kernel"}),
    ("l3", {"name": "d", "match": {"ipv4.dst": "0.0.0.0", "l4.dport": 1, "ipv4.proto": "udp"}, "fwd": "drop",
            "actions": {}}),
    ("v6", {"name": "e", "match": {"ipv6.src": "2001:db8::1", "eth.src": "02-00-00-00-00-01", "vlan.id": 10},
            "actions": {"ipv6.dst": "fe80::2"}}),
    ("masked", {"name": "f", "match": {"ipv4.src": "10.1.0.0", "meta.port": "p2"}}),
    ("masked", {"name": "g", "match": {"ipv4.src": "10.2.0.0", "meta.port": 3}}),
]

# each refused by the full path, or (VALID_ELSEWHERE) valid but outside what the one-pass check
# proves: it must answer None
HANDED_BACK = [
    ("l3", {"name": "x", "match": {"ipv4.dst": "10.0.0.300", "l4.dport": 80, "ipv4.proto": 6}}),
    ("l3", {"name": "x", "match": {"ipv4.dst": "010.0.0.3", "l4.dport": 80, "ipv4.proto": 6}}),
    ("l3", {"name": "x", "match": {"ipv4.dst": "10.0.0.0/24", "l4.dport": 80, "ipv4.proto": 6}}),
    ("l3", {"name": "x", "match": {"ipv4.dst": "10.0.0.3", "l4.dport": 65536, "ipv4.proto": 6}}),
    ("l3", {"name": "x", "match": {"ipv4.dst": "10.0.0.3", "l4.dport": True, "ipv4.proto": 6}}),
    ("l3", {"name": "x", "match": {"ipv4.dst": "10.0.0.3", "l4.dport": 1.5, "ipv4.proto": 6}}),
    ("l3", {"name": "x", "match": {"ipv4.dst": "10.0.0.3", "l4.dport": 80}}),
    ("l3", {"name": "x", "match": {"ipv4.dst": "10.0.0.3", "l4.dport": 80, "ipv4.proto": 6, "ipv4.ttl": 1}}),
    ("l3", {"name": "x", "match": {"ipv4.dst": {"value": "10.0.0.3", "mask": "255.0.0.0"}, "l4.dport": 80,
                                   "ipv4.proto": 6}}),
    ("l3", {"name": "x", "match": {"ipv4.dst": "10.0.0.3", "l4.dport": 80, "ipv4.proto": 6},
            "actions": {"ipv4.dst": "1.1.1.1"}}),
    ("l3", {"name": "x", "match": {"ipv4.dst": "10.0.0.3", "l4.dport": 80, "ipv4.proto": 6},
            "actions": {"eth.dst": "02:00:00:00:00"}}),
    ("l3", {"name": "x", "match": {"ipv4.dst": "10.0.0.3", "l4.dport": 80, "ipv4.proto": 6},
            "actions": {"dec_ttl": True}}),
    ("l3", {"name": "x", "match": {"ipv4.dst": "10.0.0.3", "l4.dport": 80, "ipv4.proto": 6}, "fwd": "port:p9"}),
    ("l3", {"name": "x", "match": {"ipv4.dst": "10.0.0.3", "l4.dport": 80, "ipv4.proto": 6}, "fwd": "pipe:v6"}),
    ("l3", {"name": "x", "match": {"ipv4.dst": "10.0.0.3", "l4.dport": 80, "ipv4.proto": 6}, "priority": 1}),
    ("l3", {"name": "x", "match": {"ipv4.dst": "10.0.0.3", "l4.dport": 80, "ipv4.proto": 6}, "extra": 1}),
    ("l3", {"name": "bad name", "match": {"ipv4.dst": "10.0.0.3", "l4.dport": 80, "ipv4.proto": 6}}),
    ("l3", {"name": "n" * 64, "match": {"ipv4.dst": "10.0.0.3", "l4.dport": 80, "ipv4.proto": 6}}),
    ("masked", {"name": "x", "match": {"ipv4.src": "10.1.2.0", "meta.port": 1}}),
    ("masked", {"name": "x", "match": {"ipv4.src": "10.1.0.0", "meta.port": "p3"}}),
    ("pfx", {"name": "x", "match": {"ipv4.dst": "10.0.0.0/8"}}),
    ("root", {"name": "x", "match": {"meta.port": "p2"}, "fwd": "pipe:l3"}),
]


def _full_path(entries: list[tuple[str, dict]]):
    """The entries compiled as the config loader and compiler do, or the ConfigError they raise."""
    raw = copy.deepcopy(BASE)
    for pipe_name, spec in entries:
        next(p for p in raw["pipes"] if p["name"] == pipe_name).setdefault("entries", []).append(spec)
    return compile_program(load_config(raw))


def _packed_pipes():
    cfg = load_config(copy.deepcopy(BASE))
    ids = cfg.pipe_ids()
    return {p.name: PackedPipe(cfg, ids[p.name], p) for p in cfg.pipes if p.type == "basic"}


def test_every_accepted_entry_has_the_compilers_bytes():
    data = pack_entries(_packed_pipes(), [(p, spec, False) for p, spec in GOOD])
    assert data is not None
    batch = EntryBatch.from_bytes(data)
    assert batch.n == len(GOOD)
    program = _full_path(GOOD)
    size = ffi.sizeof("struct pf_entry_req")
    msize, esize = ffi.sizeof("struct pf_fields"), ffi.sizeof("struct pf_entry")
    moff, eoff = EntryBatch.offset("match"), EntryBatch.offset("entry")
    for i, (pipe_name, spec) in enumerate(GOOD):
        c = program.entry(spec["name"])
        req = data[i * size:(i + 1) * size]
        assert req[moff:moff + msize] == c.match_bytes, spec["name"]
        assert req[eoff:eoff + esize] == c.entry_bytes, spec["name"]
        assert int.from_bytes(req[:4], "little") == c.pipe_id and (c.mask_idx, c.prefixlen) == (0, 0)


VALID_ELSEWHERE = {13, 20, 21}     # fwd to a pipe, an lpm pipe, a control pipe


@pytest.mark.parametrize("k", range(len(HANDED_BACK)))
def test_anything_else_goes_back_to_the_full_path(k):
    pipe_name, spec = HANDED_BACK[k]
    assert pack_entries(_packed_pipes(), [(pipe_name, spec, False)]) is None
    if k in VALID_ELSEWHERE:
        assert _full_path([(pipe_name, spec)]).entry("x")
    else:
        with pytest.raises(ConfigError):
            _full_path([(pipe_name, spec)])


def test_two_entries_with_one_match_go_back_to_the_full_path():
    first = GOOD[0][1]
    twin = dict(first, name="twin")
    assert pack_entries(_packed_pipes(), [("l3", first, False), ("l3", twin, False)]) is None
    with pytest.raises(ConfigError, match="same match"):
        _full_path([("l3", first), ("l3", twin)])


def test_entry_batch_columns_round_trip():
    batch = EntryBatch(3, pipe_id=5)
    batch.set_column("match.ipv4_src", bytes([10, 0, 0, 1, 10, 0, 0, 2, 10, 0, 0, 3]), 4)
    batch.set(1, "entry.id", (77).to_bytes(4, "little"))
    assert batch.column("match.ipv4_src", 4)[4:8] == bytes([10, 0, 0, 2])
    assert batch.ids() == [0, 77, 0] and batch.results() == [0, 0, 0]
    reqs = ffi.from_buffer("struct pf_entry_req[]", batch.buf)
    assert [r.pipe for r in reqs] == [5, 5, 5]
    with pytest.raises(ValueError, match="3 values of 4"):
        batch.set_column("match.ipv4_src", b"\0" * 8, 4)


def _uniform(n: int) -> list[tuple[str, dict, bool]]:
    return [("l3", {"name": f"u{i}", "match": {"l4.dport": i + 1, "ipv4.dst": f"10.{i // 256}.{i % 256}.1",
                                               "ipv4.proto": "udp"},
                    "actions": {"ipv4.src": f"192.168.{i % 256}.{i // 256}", "eth.dst": "02:00:00:00:00:01"},
                    "fwd": "port:p1"}, False) for i in range(n)]


def test_a_uniform_batch_is_packed_a_column_at_a_time_as_entry_by_entry():
    from pyflow.config.packed import pack_uniform

    pipes = _packed_pipes()
    items = _uniform(300)
    data = pack_uniform(pipes, items)
    assert data is not None
    assert data == b"".join(pipes["l3"].encode(spec)[0] for _, spec, _ in items)
    program = _full_path([(p, spec) for p, spec, _ in items[:40]])
    size = ffi.sizeof("struct pf_entry_req")
    eoff, esize = EntryBatch.offset("entry"), ffi.sizeof("struct pf_entry")
    assert all(data[i * size + eoff:i * size + eoff + esize] == program.entry(f"u{i}").entry_bytes for i in range(40))


@pytest.mark.parametrize("change", [
    lambda s: s["match"].__setitem__("ipv4.dst", "10.0.0.256"),
    lambda s: s["match"].__setitem__("ipv4.dst", "10.0.0.1\n10.0.0.2"),
    lambda s: s["match"].__setitem__("ipv4.dst", 167772161),
    lambda s: s["match"].__setitem__("l4.dport", "http"),
    lambda s: s["actions"].__setitem__("ipv4.src", "1.2.3"),
    lambda s: s.__setitem__("name", "bad name"),
    lambda s: s.__setitem__("fwd", "port:p2"),          # valid, but another shape: entry by entry
    lambda s: s["match"].update({"ipv4.dst": "10.0.0.1", "l4.dport": 1}),   # the match of u0
])
def test_one_odd_entry_in_a_uniform_batch_is_seen(change):
    from pyflow.config.packed import pack_uniform

    items = _uniform(50)
    change(items[17][1])
    assert pack_uniform(_packed_pipes(), items) is None
    packed_one_by_one = pack_entries(_packed_pipes(), items)
    if items[17][1].get("fwd") == "port:p2":
        assert packed_one_by_one is not None
    else:
        assert packed_one_by_one is None
