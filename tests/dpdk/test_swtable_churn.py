"""The software pipes' exact-match index under churn: removed slots are reused, the index is rebuilt
without them (a small entry table makes that happen within a few hundred removals) and grows as it fills
(a larger one), while every installed key keeps being found, every removed one misses, and a re-keyed
entry keeps its id.

The job runs in its own process (the EAL initialises once per process) on net_null vdevs: test_run only.
"""
from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import sys
import uuid

import pytest

scapy = pytest.importorskip("scapy.all")
Ether, IP, UDP, Raw = scapy.Ether, scapy.IP, scapy.UDP, scapy.Raw

CONFIG = {
    "name": "churn",
    "ports": [{"name": "a", "id": 0}, {"name": "b", "id": 1}],
    "pipes": [
        {"name": "root", "type": "control", "root": True, "match": ["meta.port", "l4.dport"],
         "fwd_miss": "drop",
         "entries": [{"name": "from_a", "priority": 5, "match": {"meta.port": "a"}, "fwd": "pipe:flows"},
                     {"name": "dport_9", "priority": 1, "match": {"meta.port": "a", "l4.dport": 9},
                      "fwd": "port:a"}]},
        {"name": "flows", "type": "basic", "match": ["ipv4.src", "l4.sport"], "fwd": "port:b",
         "fwd_miss": "drop"},
    ],
}
ROUNDS = 12


def frame(src: str, sport: int, dport: int = 5201) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=src, dst="20.1.1.1") /
                 UDP(sport=sport, dport=dport) / Raw(b"x" * 18))


def job(prefix: str, max_entries: int, per_round: int) -> dict:
    """In the job process: churn the flows pipe, returning every mismatch found."""
    from pyflow.compiler import compile_program, fields_struct
    from pyflow.config.loader import load_config
    from pyflow.instance import Instance, verdict_kind
    from pyflow.native import ffi

    eal = ["pyflow", "--no-huge", "-m", "512", "--file-prefix", prefix, "-l", "0-1", "--no-pci",
           "--log-level", "lib.eal:warning", "--vdev", "net_null0", "--vdev", "net_null1"]
    inst = Instance.open("dpdk", prefix, eal_args=eal, max_entries=max_entries)
    errors = []
    try:
        program = compile_program(load_config(CONFIG), {"a": "net_null0", "b": "net_null1"})
        program.apply(inst)
        flows = next(p.id for p in program.pipes if p.name == "flows")

        def check(src, sport, want_id, what):
            v, _ = inst.test_run(0, frame(src, sport))
            got = v.entry_id if verdict_kind(v) == "tx" and v.out_port == 1 else None
            if got != want_id:
                errors.append(f"{what} {src}:{sport}: entry {got}, expected {want_id}")

        def match(src, sport):
            return fields_struct({"ipv4.src": int(ipaddress.IPv4Address(src)), "l4.sport": sport})

        removed = []
        for r in range(ROUNDS):
            keys = [(f"10.{r}.{i // 200}.{i % 200}", 1000 + i) for i in range(per_round)]
            ids = [inst.entry_add(flows, 0, 0, match(*k), ffi.new("struct pf_entry *")) for k in keys]
            if len(set(ids)) != len(ids):
                errors.append(f"round {r}: duplicate ids {ids}")
            for k, i in zip(keys, ids):
                check(*k, i, f"round {r} installed")
            for k in removed[-per_round:]:
                check(*k, None, f"round {r} removed")
            # the same key again updates in place
            if inst.entry_add(flows, 0, 0, match(*keys[3]), ffi.new("struct pf_entry *")) != ids[3]:
                errors.append(f"round {r}: re-adding a key gave a new id")
            # a new match for an entry keeps its id; its old key misses
            moved = (f"10.{r}.200.1", 4000 + r)
            inst.entry_replace(ids[0], flows, 0, 0, match(*moved), ffi.new("struct pf_entry *"))
            check(*moved, ids[0], f"round {r} re-keyed")
            check(*keys[0], None, f"round {r} old key of re-keyed")
            # the control pipe's higher-priority mask still wins over the one that leads here
            v, _ = inst.test_run(0, frame(keys[1][0], keys[1][1], dport=9))
            if verdict_kind(v) != "tx" or v.out_port != 0:
                errors.append(f"round {r}: control pipe priority lost")
            # remove in an order unlike the install order, so removed slots sit between used ones
            for i in ids[1::2] + ids[0::2]:
                inst.entry_del(i)
            removed += keys[1:] + [moved]
            for k in keys[1:5]:
                check(*k, None, f"round {r} just removed")
    finally:
        inst.close()
    return {"errors": errors}


@pytest.mark.parametrize("max_entries,per_round", [(64, 40), (2048, 700)], ids=["rebuilt", "grown"])
def test_index_churn_keeps_lookups_exact(max_entries, per_round):
    prefix = f"pfc{uuid.uuid4().hex[:5]}"
    try:
        r = subprocess.run([sys.executable, __file__, prefix, str(max_entries), str(per_round)], capture_output=True,
                           text=True, timeout=300)
    finally:
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["errors"] == []


if __name__ == "__main__":
    print(json.dumps(job(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
