"""Runtime entry fuzzing through the control socket while the instance forwards.

`pyflow run` (resubmit pipeline) carries steady traffic over learned flows while a seeded stream of
broken requests arrives on its control socket: lines that are not JSON, unknown ops, entries with
unknown pipes and fields, values of the wrong type or out of range, actions the pipe does not allow,
bad forward targets, duplicate names (with the running instance and within one batch), batches with
one bad entry among good ones, and batches larger than the pipe. Every one must get an error reply
(one line, exit code 2, never an internal error), nothing of it may be applied, and not one frame of
the established flows may be lost.
"""
from __future__ import annotations

import collections
import json
import os
import random
import signal
import socket
import uuid

import pytest

from pyflow.control import socket_path
from tests.drill.restart_lab import Receiver, Sender, write_config
from tests.netns.test_miss import send
from tests.pyflow_testing import PyflowRun, wait_until

SEED = int(os.environ.get("PYFLOW_FUZZ_SEED", "20261203"))
REQUESTS = 600
FLOWS = [f"192.168.55.{i}" for i in range(1, 5)]


@pytest.fixture(scope="module")
def lab():
    from pyflow.lab import Lab

    with Lab("resubmit", prefix=f"pfe{uuid.uuid4().hex[:5]}") as lab:
        yield lab


def good(name: str, src: str) -> dict:
    return {"pipe": "h2n", "entry": {"name": name, "match": {"ipv4.src": src}, "actions": {"ipv4.dst": "1.2.3.4"}}}


def broken_request(rng: random.Random, existing: str) -> tuple[str, bytes]:
    """(kind, one request line)."""
    kind = rng.choice(["raw", "op", "pipe", "field", "type", "range", "action", "fwd", "dup", "batch_dup",
                       "batch_one_bad", "oversized", "del", "session"])
    e = good(f"fz{rng.randrange(1 << 30)}", f"10.{rng.randrange(256)}.{rng.randrange(256)}.1")
    ent = e["entry"]
    if kind == "raw":
        return kind, rng.choice([b"not json", b"[1, 2]", b'{"op": 5}', b'{"args": {}}', b'"entry_add"',
                                 b'{"op": "entry_add", "args": []}', b"{", bytes(rng.randrange(256) for _ in range(40))
                                 .replace(b"\n", b" ")])
    if kind == "op":
        return kind, json.dumps({"op": rng.choice(["entry_ad", "flush", "", "ENTRY_ADD"]), "args": {}}).encode()
    if kind == "pipe":
        e["pipe"] = rng.choice(["h2m", "", "nosuch", 7, None])
    elif kind == "field":
        ent["match"] = {rng.choice(["ipv4.srcc", "ip.src", "ipv4.dst", "l4.dport"]): "10.0.0.1"}
    elif kind == "type":
        where = rng.choice(["match", "actions", "entry", "name", "fwd", "priority"])
        bad = rng.choice([[1], {"x": 1}, None, 1.5, True])
        if where == "match":
            ent["match"]["ipv4.src"] = bad
        elif where == "actions":
            ent["actions"]["ipv4.dst"] = bad
        elif where == "entry":
            e["entry"] = bad
        elif where == "name":
            ent["name"] = rng.choice([1, None, ["x"]])
        elif where == "fwd":
            ent["fwd"] = rng.choice([1, ["port:uplink"], {}])
        else:
            ent["priority"] = rng.choice(["high", [1], -1])
    elif kind == "range":
        ent["match"]["ipv4.src"] = rng.choice(["10.0.0.256", "1.2.3", 1 << 40, -1, "10.0.0.1/40"])
    elif kind == "action":
        ent["actions"] = {rng.choice(["eth.dst", "ipv4.ttl", "mpls.label", "push_vlan"]): 1}
    elif kind == "fwd":
        ent["fwd"] = rng.choice(["port:nosuch", "pipe:nosuch", "port:", "session:99", "pipe:root", "fly"])
    elif kind == "dup":
        ent["name"] = existing
    elif kind == "batch_dup":
        return kind, json.dumps({"op": "entry_add", "args": {"entries": [e, good(ent["name"], "10.200.0.1")]}}).encode()
    elif kind == "batch_one_bad":
        batch = [good(f"fzb{rng.randrange(1 << 30)}-{i}", f"10.201.{i // 250}.{i % 250 + 1}") for i in range(20)]
        batch[rng.randrange(20)]["entry"]["match"]["ipv4.src"] = "10.0.0.999"
        return kind, json.dumps({"op": "entry_add", "args": {"entries": batch}}).encode()
    elif kind == "oversized":
        # more than h2n holds (1024, of which its learned flows reserve max_flows)
        n = rng.choice([1100, 3000])
        batch = [good(f"fzo{i}", f"10.{100 + i // 65536}.{i // 256 % 256}.{i % 256}") for i in range(n)]
        return kind, json.dumps({"op": "entry_add", "args": {"entries": batch}}).encode()
    elif kind == "del":
        return kind, json.dumps({"op": "entry_del", "args": rng.choice([{"name": "nosuch"}, {"name": 5}, {}])}).encode()
    elif kind == "session":
        return kind, json.dumps({"op": rng.choice(["session_add_member", "session_delete_member"]),
                                 "args": rng.choice([{"id": 99, "port": "uplink"}, {"id": "x"}, {}])}).encode()
    return kind, json.dumps({"op": "entry_add", "args": e}).encode()


def listing(f) -> list:
    f.write(b'{"op": "entry_list", "args": {}}\n')
    f.flush()
    rows = json.loads(f.readline())["result"]
    return sorted((r["pipe"], r["name"], r["id"], json.dumps(r["match"], sort_keys=True), r["fwd"]) for r in rows)


def test_broken_requests_are_refused_and_traffic_flows(lab, tmp_path, figures):
    name = f"{lab.prefix}fz"
    cfg = write_config(tmp_path / "resubmit.json", max_flows=64)
    run = PyflowRun(["--backend", "ebpf", "-j", cfg, *lab.port_args(), "--instance", name, "--fresh",
                     "--stats-interval", "1"])
    rx = Receiver(lab)
    sender = Sender(lab, FLOWS, gap=0.003)
    rng = random.Random(SEED)
    kinds = collections.Counter()
    try:
        run.ready()
        send(lab, FLOWS)
        assert wait_until(lambda: all(rx.seen(s) for s in FLOWS), 5)
        sender.start()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(socket_path(name))
            sock.settimeout(60)
            f = sock.makefile("rwb")
            f.write(json.dumps({"op": "entry_add", "args": good("keep", "10.250.0.1")}).encode() + b"\n")
            f.flush()
            assert json.loads(f.readline())["ok"]
            before = listing(f)
            for i in range(REQUESTS):
                kind, line = broken_request(rng, "keep")
                f.write(line + b"\n")
                f.flush()
                reply = json.loads(f.readline())
                where = f"seed {SEED} request {i} ({kind}): {line[:200]!r} -> {reply}"
                assert reply["ok"] is False, where
                assert reply["exit_code"] == 2 and "internal error" not in reply["error"], where
                assert "\n" not in reply["error"] and reply["error"].strip(), where
                if kind in ("batch_one_bad", "batch_dup"):
                    assert isinstance(reply.get("index"), int), where
                kinds[kind] += 1
            # nothing of it was applied, and the socket still programs the datapath
            assert listing(f) == before
            f.write(json.dumps({"op": "entry_add", "args": good("after", "10.250.0.2")}).encode() + b"\n")
            f.flush()
            assert json.loads(f.readline())["ok"]
        send(lab, ["10.250.0.2"], seq0=7)
        assert wait_until(lambda: [d for s, d, _ in list(rx.frames) if s == "10.250.0.2"] == ["1.2.3.4"], 10)
    finally:
        sender.finish()
        rx.drain(sender.sent)
        rx.finish()
        code = run.stop(signal.SIGINT)
    lost = rx.missing(sender.sent)
    figures(f"{REQUESTS} broken control requests (seed {SEED}) refused, none applied: "
            + ", ".join(f"{k}={n}" for k, n in sorted(kinds.items()))
            + f"; {sender.total()} frames on {len(FLOWS)} established flows meanwhile, lost {lost}")
    assert lost == 0
    assert code == 0
