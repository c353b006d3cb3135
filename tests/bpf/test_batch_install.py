"""pf_entry_add_batch on a real ebpf instance, fed an EntryBatch (one buffer, filled a column at a time):
the ids and counters of batch-installed entries, keys already installed or repeated within the batch,
a batch larger than the table and a bad entry in the middle (the C contract: what came before it stays,
nothing after it is tried), and the entry list after each."""
from __future__ import annotations

import errno
import ipaddress
import sys
import types

import pytest
from scapy.all import IP, UDP, Ether, raw

from pyflow.entries import EntryBatch
from pyflow.errors import NativeError
from tests.bpf.conftest import Datapath

PIPE = 2


def _setup(veth_ns, max_entries=4096) -> Datapath:
    d = Datapath(veth_ns["ns"], max_entries=max_entries)
    d.port(0, veth_ns["a"])
    d.port(1, veth_ns["c"])
    d.pipe(PIPE, masks=[d.fields(ipv4_dst=0xFFFFFFFF)], fwd=(d.lib.PF_FWD_PORT, 1), root=True)
    return d


def _addrs(first: str, n: int) -> bytes:
    base = int(ipaddress.IPv4Address(first))
    return b"".join((base + i).to_bytes(4, "big") for i in range(n))


def _batch(d: Datapath, dsts: bytes, fwd=None) -> EntryBatch:
    """One request per 4 bytes of dsts, all with the pipe's default fwd unless fwd=(type, target)."""
    entry = d.ffi.new("struct pf_entry *")
    if fwd:
        entry.fwd.type, entry.fwd.target = fwd
    b = EntryBatch(len(dsts) // 4, PIPE, entry=entry)
    b.set_column("match.ipv4_dst", dsts, 4)
    return b


def _frame(dst: str) -> bytes:
    return raw(Ether() / IP(src="10.9.9.9", dst=dst) / UDP(dport=9))


def _listed(d: Datapath) -> dict[int, bytes]:
    """id -> ipv4_dst bytes of the pipe's entries, as the backend lists them."""
    out = d.ffi.new("struct pf_entry_info[]", 8192)
    count = d.ffi.new("uint32_t *")
    d.call(d.lib.pf_entry_list, d.inst, PIPE, out, 8192, count)
    return {out[i].entry.id: bytes(d.ffi.buffer(d.ffi.addressof(out[i].match, "ipv4_dst"), 4))
            for i in range(count[0])}


def _handle(d: Datapath):
    return types.SimpleNamespace(handle=d.inst)


def test_batch_entries_get_ids_counters_and_are_listed(veth_ns):
    d = _setup(veth_ns)
    try:
        # one entry installed first, dropping, and hit once: the batch updates it in place
        kept = d.entry(PIPE, d.fields(ipv4_dst=int.from_bytes(_addrs("10.1.0.7", 1), sys.byteorder)),
                       fwd=(d.lib.PF_FWD_DROP, 0))
        assert d.run(0, _frame("10.1.0.7"))[1].kind == d.lib.PF_VERDICT_DROP
        ids = _batch(d, _addrs("10.1.0.0", 500)).install(_handle(d))
        assert len(ids) == 500 and ids[7] == kept
        assert len(set(ids)) == 500
        listed = _listed(d)
        assert len(listed) == 500 and set(listed) == set(ids)
        assert listed[ids[300]] == ipaddress.IPv4Address("10.1.1.44").packed
        for k in (0, 7, 299, 499):
            dst = str(ipaddress.IPv4Address("10.1.0.0") + k)
            _, verdict, _ = d.run(0, _frame(dst))
            assert (verdict.kind, verdict.out_port, verdict.entry_id) == (d.lib.PF_VERDICT_TX, 1, ids[k]), dst
        counts = d.entry_counters(ids[0], ids[1], ids[7], ids[499])
        assert [c[0] for c in counts] == [1, 0, 2, 1]      # ids[7] kept its earlier hit
        assert d.run(0, _frame("10.1.9.9"))[1].kind != d.lib.PF_VERDICT_TX   # not installed: the pipe's miss
    finally:
        d.close()


def test_a_key_repeated_in_a_batch_is_one_entry_and_the_last_request_wins(veth_ns):
    d = _setup(veth_ns)
    try:
        dsts = _addrs("10.2.0.1", 1) + _addrs("10.2.0.2", 1) + _addrs("10.2.0.1", 1) + _addrs("10.2.0.3", 1)
        b = _batch(d, dsts)
        b.set(0, "entry.fwd.type", d.lib.PF_FWD_DROP.to_bytes(4, "little"))
        ids = b.install(_handle(d))
        assert ids[0] == ids[2] and len(set(ids)) == 3 and b.results() == [0, 0, 0, 0]
        assert len(_listed(d)) == 3
        assert d.run(0, _frame("10.2.0.1"))[1].kind == d.lib.PF_VERDICT_TX     # the second request's fwd
    finally:
        d.close()


def test_a_batch_larger_than_the_table_stops_where_it_is_full(veth_ns):
    d = _setup(veth_ns, max_entries=64)
    try:
        b = _batch(d, _addrs("10.3.0.0", 100))
        with pytest.raises(NativeError, match=r"entry 64 of 100: pipe 2: entry table full") as info:
            b.install(_handle(d))
        assert info.value.errno == errno.ENOSPC and info.value.batch_added == 64
        results = b.results()
        assert results[:64] == [0] * 64 and results[64] == -errno.ENOSPC
        assert results[65:] == [-errno.ECANCELED] * 35
        listed = _listed(d)
        assert len(listed) == 64 and set(listed) == set(b.ids()[:64])
        # the table is full, keys it holds still update in place
        again = _batch(d, _addrs("10.3.0.10", 5), fwd=(d.lib.PF_FWD_DROP, 0))
        assert again.install(_handle(d)) == b.ids()[10:15]
        assert d.run(0, _frame("10.3.0.12"))[1].kind == d.lib.PF_VERDICT_DROP
    finally:
        d.close()


def test_a_bad_entry_in_the_middle_stops_the_batch_there(veth_ns):
    d = _setup(veth_ns)
    try:
        b = _batch(d, _addrs("10.4.0.0", 10))
        b.set(4, "entry.fwd.type", d.lib.PF_FWD_PORT.to_bytes(4, "little"))
        b.set(4, "entry.fwd.target", (999).to_bytes(4, "little"))
        with pytest.raises(NativeError, match=r"entry 4 of 10: entry forward: port 999 out of range") as info:
            b.install(_handle(d))
        assert info.value.batch_added == 4
        assert b.results() == [0] * 4 + [-errno.ERANGE] + [-errno.ECANCELED] * 5
        assert set(_listed(d)) == set(b.ids()[:4])
        assert d.run(0, _frame("10.4.0.3"))[1].kind == d.lib.PF_VERDICT_TX
        assert d.run(0, _frame("10.4.0.5"))[1].kind != d.lib.PF_VERDICT_TX
    finally:
        d.close()


@pytest.fixture
def host_veth():
    """A veth pair in this namespace (the controller checks its ports under /sys/class/net)."""
    import subprocess
    import uuid

    name = f"pfq{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "link", "add", name + "a", "type", "veth", "peer", "name", name + "b"], check=True)
    try:
        for x in "ab":
            subprocess.run(["ip", "link", "set", name + x, "up"], check=True)
        yield {"ns": name, "a": name + "a", "c": name + "b"}
    finally:
        subprocess.run(["ip", "link", "del", name + "a"], check=False)


def test_the_control_api_takes_back_a_batch_the_datapath_refuses_part_way(host_veth, tmp_path):
    """The controller on a real instance whose shared table (32) is smaller than the pipe allows: the
    datapath refuses an entry in the middle, every entry the request added is removed again."""
    import json

    from pyflow.controller import Controller, RunOptions, counter_layout
    from pyflow.errors import ConfigError
    from pyflow.instance import Instance

    config = {"name": "refuse", "ports": [{"name": "p1", "id": 1}, {"name": "p2", "id": 2}],
              "pipes": [{"name": "l3", "type": "basic", "root": True, "match": ["ipv4.dst"], "fwd": "port:p2",
                         "fwd_miss": "drop", "entries": [{"name": "s", "match": {"ipv4.dst": "10.0.0.2"}}]}]}
    path = tmp_path / "refuse.json"
    path.write_text(json.dumps(config))
    opts = RunOptions(backend="ebpf", config_path=str(path), ports={"p1": host_veth["a"], "p2": host_veth["c"]},
                      instance=host_veth["ns"], fresh=True, stats_interval=3600)
    ctl = Controller(opts)
    ctl.prepare()
    inst = ctl.instance = Instance("ebpf", ctl.instance_name, fresh=True, no_pin=True, max_entries=32)
    try:
        ctl.program.apply(inst)
        ctl.layout = counter_layout(ctl.instance_name, ctl.cfg, ctl.program)
        add = ctl.handlers()["entry_add"]

        def items(base: str, n: int) -> list[dict]:
            return [{"pipe": "l3", "entry": {"name": f"e-{base}.{i}", "match": {"ipv4.dst": f"{base}.{i}"}}}
                    for i in range(n)]

        assert add({"entries": items("10.5.0", 10)})["added"] == 10
        before = sorted(info.entry.id for info in inst.entry_list(0))
        assert len(before) == 11
        with pytest.raises(ConfigError) as info:
            add({"entries": items("10.6.0", 40)})
        assert info.value.index == 21, str(info.value)
        assert str(info.value).startswith("entries[21] (entry e-10.6.0.21): ")
        assert "entry table full" in str(info.value) and "nothing from this request was applied" in str(info.value)
        assert sorted(i.entry.id for i in inst.entry_list(0)) == before
        assert set(ctl.runtime_entries) == {f"e-10.5.0.{i}" for i in range(10)}
        # the room that is left takes a batch of exactly that size, with the ids given back before
        result = add({"entries": items("10.6.0", 21)})
        assert result["added"] == 21 and len(inst.entry_list(0)) == 32
        counted = {name for name, _, _ in ctl.layout.static_entries}
        assert {f"e-10.6.0.{i}" for i in range(21)} <= counted
    finally:
        inst.close()
