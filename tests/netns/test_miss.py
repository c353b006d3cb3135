"""Packet resubmit on the ebpf backend: misses learned by the C handler and resubmitted.

Topology (pyflow.lab "resubmit"): a user namespace behind vf0 and a network
namespace behind uplink; pyflow's XDP runs on the root-namespace ends. Frames
sent from the user namespace miss the h2n pipe, reach the AF_XDP miss handler,
which installs `match ipv4.src, set ipv4.dst = ipv4.src + 1.1.1.1, fwd uplink`
and resubmits them. Every assertion is on frames captured in the network
namespace or on counters kept by the datapath.
"""
from __future__ import annotations

import json
import pathlib
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid

import pytest

from pyflow.lab import eth, ip_add, ipv4_udp, parse_frame
from tests.pyflow_testing import wait_until

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONF = ROOT / "conf" / "resubmit.json"
UDP_PORT = 4789 + 1000
MAGIC = b"PFMISS"
SO_RCVBUFFORCE = 33  # root may exceed net.core.rmem_max: bursts must not overflow the capture


# ---- frames ------------------------------------------------------------------

def udp_frame(src_mac: str, dst_mac: str, src: str, dst: str, seq: int) -> bytes:
    payload = MAGIC + struct.pack("!I", seq) + bytes(18)
    return eth(dst_mac, src_mac, 0x0800, ipv4_udp(src, dst, payload, dport=UDP_PORT, ident=seq))


def parse_udp(frame: bytes):
    """(src, dst, seq, ip_ok, udp_ok) of one of our test frames, or None."""
    p = parse_frame(frame)
    if not p or p.get("proto") != 17 or p.get("dport") != UDP_PORT or not p["payload"].startswith(MAGIC):
        return None
    # our frames always carry a UDP checksum: one the datapath zeroed is a failure here
    udp_ok = p["l4_csum_ok"] and p["udp_csum"] != 0
    return p["ip_src"], p["ip_dst"], struct.unpack("!I", p["payload"][6:10])[0], p["ip_csum_ok"], udp_ok


# ---- fixtures ----------------------------------------------------------------

@pytest.fixture(scope="module")
def lab():
    from pyflow.lab import Lab

    prefix = f"pfm{uuid.uuid4().hex[:5]}"
    with Lab("resubmit", prefix=prefix) as lab:
        yield lab


class Far:
    """Frames arriving in the network namespace (raw capture on its interface)."""

    def __init__(self, lab):
        self.sock = lab.capture_socket("net")
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)

    def drain(self):
        self.pending()

    def pending(self) -> list:
        """The frames already here, without waiting for more."""
        got = []
        self.sock.setblocking(False)
        try:
            while True:
                parsed = parse_udp(self.sock.recv(4096))
                if parsed:
                    got.append(parsed)
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)
        return got

    def collect(self, count: int, timeout: float = 3.0) -> list:
        got, deadline = [], time.monotonic() + timeout
        while len(got) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                frame = self.sock.recv(4096)
            except socket.timeout:
                break
            parsed = parse_udp(frame)
            if parsed:
                got.append(parsed)
        return got

    def close(self):
        self.sock.close()


@pytest.fixture
def far(lab):
    f = Far(lab)
    f.drain()
    yield f
    f.close()


def pipeline_config(**policy) -> dict:
    data = json.loads(CONF.read_text())
    mp = data["miss_policies"][0]
    mp.update(policy)
    h2n = next(p for p in data["pipes"] if p["name"] == "h2n")
    h2n["max_entries"] = max(h2n.get("max_entries", 0), mp.get("max_flows", 256))
    return data


def instance_name(lab) -> str:
    return f"{lab.prefix}{uuid.uuid4().hex[:4]}"


def open_pipeline(lab, name: str, data: dict, fresh: bool = True, xdp_mode: str = "auto", miss_threads: int = 0):
    from pyflow.compiler import compile_program
    from pyflow.config import load_config
    from pyflow.instance import Instance

    program = compile_program(load_config(data), lab.ports)
    inst = Instance("ebpf", name, fresh=fresh, xdp_mode=xdp_mode, miss_threads=miss_threads)
    try:
        program.apply(inst)
        inst.start()
    except BaseException:
        inst.close()
        raise
    return inst, program


@pytest.fixture
def pipeline(lab):
    """Factory: open, program and start an ebpf instance; stopped and destroyed after the test."""
    opened = []

    def make(name=None, fresh=True, xdp_mode="auto", miss_threads=0, **policy):
        inst, program = open_pipeline(lab, name or instance_name(lab), pipeline_config(**policy), fresh, xdp_mode,
                                      miss_threads)
        opened.append(inst)
        return inst, program

    yield make
    for inst in opened:
        if inst._handle is not None:
            try:
                inst.destroy()
            finally:
                inst.close()


def send(lab, sources, seq0=0, repeat=1, dst="20.1.1.100"):
    user, net = lab.host("user"), lab.host("net")
    frames = [udp_frame(user.mac, net.mac, src, dst, seq0 + i * repeat + r)
              for i, src in enumerate(sources) for r in range(repeat)]
    lab.send_frames("user", frames)
    return len(frames)


def learned(inst, program) -> dict:
    """ipv4.src of each learned h2n entry -> entry id."""
    h2n = program.pipe("h2n").id
    out = {}
    for info in inst.entry_list(h2n):
        if info.entry.flags & 1:  # PF_ENTRY_LEARNED
            out[socket.inet_ntoa(struct.pack("=I", info.match.ipv4_src))] = info.entry.id
    return out


def miss_handled(misses: int, m: dict) -> bool:
    """Every miss so far reached the handler or was dropped on its way (m: the handler's stats), and the
    handler is done with each: nothing of it can still come out."""
    return misses == m["received"] + m["ring_drops"] + m["shed_in_datapath"] and \
        m["received"] == (m["installed"] + m["shed_rate_limit"] - m["shed_in_datapath"] + m["coalesced"]
                          + m["refused_max_flows"])


def handled(inst, program) -> dict:
    """The handler's stats once it is done with every miss of h2n so far."""
    h2n = program.pipe("h2n").id
    return wait_until(lambda: (inst.counters_pipe(h2n)["misses"], inst.miss_stats()), until=lambda v: miss_handled(*v),
                      what="the handler to work off every miss (h2n misses, stats)")[1]


SOURCES = [f"192.168.99.{i}" for i in range(101, 111)]


# ---- tests -------------------------------------------------------------------

@pytest.mark.parametrize("xdp_mode", ["driver", "generic"])
def test_first_packet_of_every_flow_is_forwarded(lab, far, pipeline, xdp_mode):
    # AF_XDP copy mode receives the metadata in both attach modes
    inst, program = pipeline(xdp_mode=xdp_mode)
    assert inst.info()["xdp_mode"] == {"driver": 1, "generic": 2}[xdp_mode]
    send(lab, SOURCES)
    got = far.collect(len(SOURCES))
    assert sorted((s, d) for s, d, *_ in got) == sorted((s, ip_add(s, "1.1.1.1")) for s in SOURCES)
    assert all(ip_ok and udp_ok for *_, ip_ok, udp_ok in got), got

    entries = learned(inst, program)
    assert sorted(entries) == sorted(SOURCES)
    h2n = program.pipe("h2n").id
    counters = inst.counters_entries(list(entries.values()))
    assert {src: counters[eid][0] for src, eid in entries.items()} == {s: 1 for s in SOURCES}
    assert inst.counters_pipe(h2n)["misses"] == len(SOURCES)
    stats = inst.miss_stats()
    assert stats["installed"] == len(SOURCES) and stats["resubmitted"] == len(SOURCES)

    # established flows never reach the handler again
    send(lab, SOURCES, seq0=100)
    assert len(far.collect(len(SOURCES))) == len(SOURCES)
    counters = inst.counters_entries(list(entries.values()))
    assert all(counters[eid][0] == 2 for eid in entries.values())
    assert inst.counters_pipe(h2n)["misses"] == len(SOURCES)
    assert inst.miss_stats()["received"] == len(SOURCES)


def test_burst_of_one_new_flow_is_one_entry_without_loss(lab, far, pipeline):
    inst, program = pipeline(miss_threads=2)  # one thread per port's socket
    burst = 64
    send(lab, ["192.168.99.150"], repeat=burst)
    got = far.collect(burst)
    assert len(got) == burst
    assert sorted(seq for _, _, seq, *_ in got) == list(range(burst))
    assert {d for _, d, *_ in got} == {"193.169.100.151"}
    entries = learned(inst, program)
    assert list(entries) == ["192.168.99.150"]
    assert inst.counters_entries(list(entries.values()))[entries["192.168.99.150"]][0] == burst
    stats = inst.miss_stats()
    assert stats["installed"] == 1
    # frames that missed before the entry existed were resubmitted behind the first one
    misses = inst.counters_pipe(program.pipe("h2n").id)["misses"]
    assert stats["received"] == misses and stats["coalesced"] == misses - 1
    assert stats["resubmitted"] == misses


def test_max_flows_refuses_new_flows_only(lab, far, pipeline):
    inst, program = pipeline(max_flows=3)
    send(lab, SOURCES[:6])
    stats = handled(inst, program)
    got = far.collect(3) + far.pending()
    assert sorted(s for s, *_ in got) == SOURCES[:3]
    assert sorted(learned(inst, program)) == SOURCES[:3]
    assert stats["refused_max_flows"] == 3
    # established flows are unaffected; refused ones are refused again
    send(lab, SOURCES[:6], seq0=100)
    got = far.collect(3)
    stats = handled(inst, program)
    got += far.pending()
    assert sorted(s for s, *_ in got) == SOURCES[:3]
    assert stats["refused_max_flows"] == 6
    entries = learned(inst, program)
    assert all(c[0] == 2 for c in inst.counters_entries(list(entries.values())).values())


def test_miss_storm_is_shed_and_established_flows_unaffected(lab, far, pipeline):
    inst, program = pipeline(rate_limit=5, burst=3)
    established = SOURCES[:3]
    send(lab, established)
    assert len(far.collect(3)) == 3
    entries = learned(inst, program)
    time.sleep(0.7)  # the bucket refills to its burst of 3 on the kernel clock, which no counter shows
    # 300 new flows at once interleaved with established traffic: only the bucket's worth is learned
    user, net = lab.host("user"), lab.host("net")
    storm = [f"10.80.{i // 250}.{i % 250 + 1}" for i in range(300)]
    frames = []
    for i, src in enumerate(storm):
        frames.append(udp_frame(user.mac, net.mac, src, "20.1.1.100", 1000 + i))
        if i % 30 == 0:
            frames += [udp_frame(user.mac, net.mac, s, "20.1.1.100", 5000 + i) for s in established]
    t0 = time.monotonic()
    lab.send_frames("user", frames)
    stats = handled(inst, program)
    took = time.monotonic() - t0
    learned_storm = stats["installed"] - 3
    got = far.collect(30 + learned_storm) + far.pending()
    from_established = [g for g in got if g[0] in established]
    assert len(from_established) == 30
    assert 3 <= learned_storm <= 4 + 5 * took  # the burst, plus what 5 pps refills while the storm is handled
    assert stats["shed_rate_limit"] == 300 - learned_storm
    # most of the storm never reached the handler: XDP shed it, as drop reason rate_limit of the ingress port
    # (vf0, id 1), and the learner counts it as shed all the same
    rate_limit_drops = inst.counters_port(1)["drops"][7]        # PF_DROP_RATE_LIMIT
    assert stats["shed_in_datapath"] == rate_limit_drops > 0
    assert stats["received"] == 3 + 300 - stats["shed_in_datapath"]  # first frames and the storm: every miss
    assert len(got) - len(from_established) == learned_storm
    counters = inst.counters_entries(list(entries.values()))
    assert all(c[0] == 11 for c in counters.values())


def test_idle_entries_age_out_and_relearn(lab, far, pipeline):
    inst, program = pipeline(idle_timeout=1.0)
    active, idle = SOURCES[0], SOURCES[1]
    send(lab, [active, idle])
    assert len(far.collect(2)) == 2
    seqs = iter(range(10, 1000))

    def keep_busy() -> int:
        send(lab, [active], seq0=next(seqs))
        return inst.miss_stats()["aged_out"]

    # a frame of the busy flow every poll, ten per timeout, until the idle one is gone
    assert wait_until(keep_busy, 5.0, 0.1, what="the idle flow to age out") == 1
    assert sorted(learned(inst, program)) == [active]
    far.drain()
    send(lab, [idle], seq0=100)
    got = far.collect(1)
    assert [(s, d) for s, d, *_ in got] == [(idle, ip_add(idle, "1.1.1.1"))]
    assert inst.miss_stats()["installed"] == 3
    assert sorted(learned(inst, program)) == sorted([active, idle])


def test_policy_set_while_running(lab, far):
    from pyflow.compiler import compile_program
    from pyflow.config import load_config
    from pyflow.instance import Instance

    program = compile_program(load_config(pipeline_config()), lab.ports)
    policies, program.learns = program.learns, []
    inst = Instance("ebpf", instance_name(lab), fresh=True)
    try:
        program.apply(inst)
        inst.start()
        send(lab, SOURCES[:1])
        # a miss without a handler is dropped
        wait_until(lambda: inst.counters_port(1)["drops"][2], until=lambda n: n == 1,   # PF_DROP_NO_MISS
                   what="vf0 to drop the miss")
        assert far.pending() == []
        inst.learn_set(policies[0].value)
        send(lab, SOURCES[:1], seq0=10)
        assert [d for _, d, *_ in far.collect(1)] == [ip_add(SOURCES[0], "1.1.1.1")]
    finally:
        inst.destroy()
        inst.close()


def test_learned_entries_survive_close_and_reopen(lab, far, pipeline):
    name = instance_name(lab)
    inst, program = pipeline(name=name)
    send(lab, SOURCES)
    assert len(far.collect(len(SOURCES))) == len(SOURCES)
    before = learned(inst, program)
    inst.close()

    inst2, program2 = pipeline(name=name, fresh=False)
    assert inst2.info()["adopted"]
    after = learned(inst2, program2)
    assert after == before
    send(lab, SOURCES, seq0=100)
    got = far.collect(len(SOURCES))
    assert sorted(d for _, d, *_ in got) == sorted(ip_add(s, "1.1.1.1") for s in SOURCES)
    assert all(c[0] == 2 for c in inst2.counters_entries(list(after.values())).values())
    stats = inst2.miss_stats()
    assert stats["installed"] == 0 and stats["received"] == 0


OWNER = r"""
import json, sys, time
sys.path.append(sys.argv[1])
from tests.netns.test_miss import open_pipeline, pipeline_config
from pyflow.lab import Lab
lab = Lab.load(sys.argv[2])
inst, program = open_pipeline(lab, sys.argv[3], pipeline_config(), fresh=True)
print("ready", flush=True)
time.sleep(120)  # held until the test kills it; the limit only ends an orphan
"""


def test_learned_entries_survive_sigkill(lab, far, pipeline):
    name = instance_name(lab)
    owner = subprocess.Popen([sys.executable, "-P", "-c", OWNER, str(ROOT), lab.prefix, name],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = owner.stdout.readline()
        assert line.strip() == "ready", owner.stderr.read() if owner.poll() is not None else line
        send(lab, SOURCES)
        assert len(far.collect(len(SOURCES))) == len(SOURCES)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
    # nobody owns the instance now: established flows keep being forwarded by the pinned datapath
    send(lab, SOURCES, seq0=100)
    got = far.collect(len(SOURCES))
    assert sorted(d for _, d, *_ in got) == sorted(ip_add(s, "1.1.1.1") for s in SOURCES)

    inst, program = pipeline(name=name, fresh=False)
    entries = learned(inst, program)
    assert sorted(entries) == sorted(SOURCES)
    assert all(c[0] == 2 for c in inst.counters_entries(list(entries.values())).values())
    # and the handler is back for new flows
    far.drain()
    send(lab, ["192.168.99.160"])
    assert [d for _, d, *_ in far.collect(1)] == ["193.169.100.161"]


@pytest.mark.measure
def test_measure_miss_path(lab, far, pipeline):
    """New flows/s through one handler thread and first-packet latency, vs established-flow latency."""
    inst, program = pipeline(max_flows=16384)
    user, net = lab.host("user"), lab.host("net")
    tx = lab.socket("user", socket.AF_PACKET, socket.SOCK_RAW, 0)
    tx.bind((user.ifname, 0))

    def one_way(src, seq):
        frame = udp_frame(user.mac, net.mac, src, "20.1.1.100", seq)
        t0 = time.perf_counter_ns()
        tx.send(frame)
        got = far.collect(1, timeout=1.0)
        return (time.perf_counter_ns() - t0) / 1000 if got else None

    sources = [f"10.60.{i // 250}.{i % 250 + 1}" for i in range(300)]
    first = [one_way(s, i) for i, s in enumerate(sources)]
    established = [one_way(s, 1000 + i) for i, s in enumerate(sources)]

    def pct(values, p):
        values = sorted(v for v in values if v is not None)
        return values[min(len(values) - 1, int(len(values) * p))]

    # throughput: bursts of new flows that fit the AF_XDP ring, timed by the handler's own count
    def new_flows_per_s(net_octet, n=4000, burst=1000):
        flows = [f"10.{net_octet}.{i // 250}.{i % 250 + 1}" for i in range(n)]
        frames = [udp_frame(user.mac, net.mac, s, "20.1.1.100", i) for i, s in enumerate(flows)]
        base = inst.miss_stats()["resubmitted"]
        busy = 0.0
        for i in range(0, n, burst):
            t0 = time.perf_counter()
            for f in frames[i:i + burst]:
                tx.send(f)
            target = base + min(i + burst, n)
            while inst.miss_stats()["resubmitted"] < target and time.perf_counter() - t0 < 5:
                time.sleep(0.0005)
            busy += time.perf_counter() - t0
        far.drain()
        assert inst.miss_stats()["resubmitted"] == base + n, inst.miss_stats()
        return round(n / busy)

    from pyflow import native

    logged = new_flows_per_s(70)            # one "Created flow" INFO line per flow, into Python logging
    native.set_log_level(lib_level := 40)   # WARNING: the handler never takes the GIL
    try:
        quiet = new_flows_per_s(71)
    finally:
        native.set_log_level(50)
    tx.close()
    report = {
        "first_packet_us": {"p50": pct(first, 0.5), "p99": pct(first, 0.99), "lost": first.count(None)},
        "established_us": {"p50": pct(established, 0.5), "p99": pct(established, 0.99)},
        "new_flows_per_s": {"info_log_per_flow": logged, f"log_level_{lib_level}": quiet},
        "miss_stats": inst.miss_stats(),
    }
    print("\nmiss path:", json.dumps(report))
    assert first.count(None) == 0
