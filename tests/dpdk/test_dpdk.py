"""DPDK backend: EAL bring-up on vdevs, real frames through the software pipes, errors.

DPDK runs in subprocesses (tests/dpdk/runner.py): the EAL initialises once per
process. Frames cross real veths between namespaces this test creates; the
DPDK process binds net_af_packet vdevs to its own veth ends.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import uuid

import pytest

from tests.pyflow_testing import PyflowRun, counters_json, wait_until

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUNNER = HERE / "runner.py"
WIRE = HERE / "wire.py"
PY = sys.executable

scapy = pytest.importorskip("scapy.all")
Ether, IP, UDP, Raw = scapy.Ether, scapy.IP, scapy.UDP, scapy.Raw

FWD_CONFIG = {
    "name": "fwd",
    "ports": [{"name": "a", "id": 0}, {"name": "b", "id": 1}],
    "pipes": [{
        "name": "root", "type": "basic", "root": True, "match": ["meta.port"],
        "actions": ["ipv4.dst", "eth.dst", "l4.dport"], "fwd_miss": "drop",
        "entries": [
            {"name": "a_to_b", "match": {"meta.port": "a"},
             "actions": {"ipv4.dst": "10.9.9.9", "eth.dst": "02:00:00:00:00:bb", "l4.dport": 7777},
             "fwd": "port:b"},
            {"name": "b_to_a", "match": {"meta.port": "b"}, "fwd": "port:a"},
        ],
    }],
}


def sh(*args, ns=None, check=True):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


@pytest.fixture
def lab():
    """Namespaces A and B each with one veth whose peer sits in namespace D (where DPDK runs)."""
    p = f"pfd{uuid.uuid4().hex[:5]}"
    ns = {"a": p + "a", "b": p + "b", "d": p + "d"}
    try:
        for n in ns.values():
            sh("ip", "netns", "add", n)
        for side, dev in (("a", "d0"), ("b", "d1")):
            host, peer = f"{p}{side}0", f"{p}{dev}"
            sh("ip", "link", "add", host, "netns", ns[side], "type", "veth", "peer", "name", peer, "netns", ns["d"])
            # no IPv6 autoconfiguration: only the frames a test sends cross the pipes
            for n, dev_name in ((ns[side], host), (ns["d"], peer)):
                sh("sysctl", "-qw", f"net.ipv6.conf.{dev_name}.disable_ipv6=1", ns=n)
                sh("ip", "link", "set", dev_name, "up", ns=n)
        yield {"prefix": p, "ns": ns, "a": f"{p}a0", "b": f"{p}b0", "d0": f"{p}d0", "d1": f"{p}d1"}
    finally:
        for n in ns.values():
            subprocess.run(["ip", "netns", "del", n], capture_output=True)
        shutil.rmtree(f"/var/run/dpdk/{p}", ignore_errors=True)


def eal_args(prefix: str, vdevs: list[str]) -> list[str]:
    args = ["pyflow", "--no-huge", "-m", "512", "--file-prefix", prefix, "-l", "0-1", "--no-pci",
            "--log-level", "lib.eal:warning"]
    for v in vdevs:
        args += ["--vdev", v]
    return args


def run_job(job: dict, ns: str | None = None, timeout: float = 60, env: dict | None = None):
    """The runner on one job; the EAL's runtime files (named after the job) are removed afterwards."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + [PY, str(RUNNER), json.dumps(job)]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input="",
                              env=dict(os.environ, **(env or {})))
    finally:
        shutil.rmtree(f"/var/run/dpdk/{job['name']}", ignore_errors=True)


def last_json(r: subprocess.CompletedProcess) -> dict:
    """The runner's final JSON line, once it exited 0."""
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


class Serve:
    """A runner in serve mode inside namespace ns; stop() returns its final counters."""

    def __init__(self, job: dict, ns: str):
        job = dict(job, mode="serve", duration=60)
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, PY, str(RUNNER), json.dumps(job)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read()
            self.proc.wait()
            raise AssertionError(f"dpdk runner did not start: {err}")
        self.ready = json.loads(line)

    def stop(self) -> dict:
        out, err = self.proc.communicate(input="", timeout=30)   # stdin EOF: stop, print counters
        assert self.proc.returncode == 0, err
        self.log = err
        return json.loads(out.strip().splitlines()[-1])["counters"]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def capture(ns: str, ifname: str, seconds: float):
    """wire.py capture for at most `seconds`; read it with captured()."""
    proc = subprocess.Popen(["ip", "netns", "exec", ns, PY, str(WIRE), "capture", ifname, str(seconds), "0800"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr.readline().strip() == "ready"
    return proc


def captured(cap, n: int, lines: list[str]) -> list:
    """Our frames in the capture's output, reading on (into lines) until n are in or the capture ended."""
    while len(got := ours([bytes.fromhex(line) for line in lines])) < n and (line := cap.stdout.readline()):
        lines.append(line)
    return got


def send(ns: str, ifname: str, frames: list[bytes], gap: float = 0.0):
    sh(PY, str(WIRE), "send", ifname, ",".join(f.hex() for f in frames), str(gap), ns=ns)


def udp(src: str, dst: str, seq: int) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:01") / IP(src=src, dst=dst, ttl=64, id=seq) /
                 UDP(sport=5000 + seq, dport=4000) / Raw(b"PFDPDK" + seq.to_bytes(4, "big") + bytes(20)))


def checksums_ok(frame: bytes) -> bool:
    pkt = Ether(frame)
    again = pkt.copy()
    del again[IP].chksum
    del again[UDP].chksum
    again = Ether(bytes(again))
    return pkt[IP].chksum == again[IP].chksum and pkt[UDP].chksum == again[UDP].chksum


def ours(frames: list[bytes]) -> list:
    return [Ether(f) for f in frames if b"PFDPDK" in f]


# ---- errors ---------------------------------------------------------------------

@pytest.mark.parametrize("case", ["bad_eal_arg", "too_many_lcores", "missing_vdev", "port_out_of_range", "eal_twice"])
def test_errors_are_one_clear_line(case):
    prefix = f"pfd{uuid.uuid4().hex[:5]}"
    job = {"name": prefix, "mode": "open", "eal": eal_args(prefix, ["net_null0", "net_null1"])}
    expect = {
        "bad_eal_arg": "the EAL refused",
        # a recipe written for a bigger host: the EAL's own reason, in the same line
        "too_many_lcores": f"lcore {os.cpu_count()} unavailable",
        "missing_vdev": "no DPDK device named 'net_af_packet9' (available: 0=net_null0, 1=net_null1)",
        "port_out_of_range": "DPDK port 7 does not exist (available: 0=net_null0, 1=net_null1)",
        "eal_twice": "already initialised in this process",
    }[case]
    if case == "bad_eal_arg":
        job["eal"] = job["eal"] + ["--no-such-eal-flag"]
    elif case == "too_many_lcores":
        job["eal"][job["eal"].index("-l") + 1] = f"0-{os.cpu_count()}"
    elif case == "missing_vdev":
        job["bind"] = [[0, "net_af_packet9"]]
    elif case == "port_out_of_range":
        job["bind"] = [[0, "7"]]
    try:
        if case == "eal_twice":
            code = ("import sys; sys.argv=['x', sys.argv[1]]; import json; from pyflow.instance import Instance; "
                    "j=json.loads(sys.argv[1]); a=Instance.open('dpdk','one',eal_args=j['eal']); "
                    "Instance.open('dpdk','two',eal_args=j['eal'])")
            r = subprocess.run([PY, "-c", code, json.dumps(job)], capture_output=True, text=True, timeout=60)
        else:
            r = run_job(job)
        assert r.returncode != 0
        errors = [line for line in r.stderr.splitlines() if line.startswith(("error:", "pyflow.errors", "pyflow."))]
        assert any(expect in line for line in r.stderr.splitlines()), r.stderr
        if case != "eal_twice":
            assert len(errors) == 1, r.stderr
        # the EAL's usage text is not a message
        assert "EAL common options" not in r.stdout + r.stderr and "Usage:" not in r.stdout + r.stderr
    finally:
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
    # nothing left running and the EAL's runtime files are gone
    assert not os.path.exists(f"/var/run/dpdk/{prefix}/mp_socket") or case in ("bad_eal_arg", "too_many_lcores")


# ---- real traffic ----------------------------------------------------------------

@pytest.mark.parametrize("pmd", ["net_af_packet", "net_af_xdp"])
def test_frames_rewritten_across_namespaces(lab, pmd):
    p = lab["prefix"]
    vdevs = [f"{pmd}0,iface={lab['d0']}", f"{pmd}1,iface={lab['d1']}"]
    job = {"name": p, "eal": eal_args(p, vdevs), "config": FWD_CONFIG,
           "bindings": {"a": f"{pmd}0", "b": f"{pmd}1"}}
    srv = Serve(job, lab["ns"]["d"])
    try:
        assert "software pipes" in srv.ready["info"]["mode_reason"]
        cap = capture(lab["ns"]["b"], lab["b"], 20)
        frames = [udp("192.168.1.10", "192.168.2.20", i) for i in range(20)]
        send(lab["ns"]["a"], lab["a"], frames, gap=0.002)
        got = captured(cap, 20, [])
        cap.kill()
        cap.wait()
        counters = srv.stop()
    finally:
        srv.kill()
    assert len(got) == 20
    assert sorted(int.from_bytes(bytes(g[Raw])[6:10], "big") for g in got) == list(range(20))
    for g in got:
        assert g[Ether].dst == "02:00:00:00:00:bb" and g[Ether].src == "02:00:00:00:00:aa"
        assert g[IP].dst == "10.9.9.9" and g[IP].src == "192.168.1.10" and g[UDP].dport == 7777
        assert checksums_ok(bytes(g))
    assert counters["entries"]["a_to_b"]["packets"] == 20
    assert counters["entries"]["a_to_b"]["bytes"] == sum(len(f) for f in frames)
    assert counters["ports"]["a"]["rx_packets"] == 20
    assert counters["ports"]["b"]["tx_packets"] == 20
    assert counters["pipes"]["root"] == {"hits": 20, "misses": 0}


def test_resubmit_scenario(lab):
    """conf/resubmit.json: the first frame of every flow misses h2n, is learned and resubmitted."""
    p = lab["prefix"]
    job = {"name": p, "eal": eal_args(p, [f"net_af_packet0,iface={lab['d0']}", f"net_af_packet1,iface={lab['d1']}"]),
           "config": str(ROOT / "conf" / "resubmit.json"),
           "bindings": {"uplink": "net_af_packet0", "vf0": "net_af_packet1"}}
    srv = Serve(job, lab["ns"]["d"])
    try:
        cap = capture(lab["ns"]["a"], lab["a"], 20)
        flows = [f"192.168.99.{101 + i}" for i in range(10)]
        send(lab["ns"]["b"], lab["b"], [udp(src, "20.1.1.100", i) for i, src in enumerate(flows)], gap=0.01)
        # the second frames once every first one came out: learned and resubmitted, its entry is in
        lines = []
        captured(cap, len(flows), lines)
        send(lab["ns"]["b"], lab["b"], [udp(src, "20.1.1.100", 100 + i) for i, src in enumerate(flows)], gap=0.002)
        got = captured(cap, 2 * len(flows), lines)
        cap.kill()
        cap.wait()
        counters = srv.stop()
    finally:
        srv.kill()
    assert len(got) == 20, srv.log
    for g in got:
        a, b, c, d = (int(x) for x in g[IP].src.split("."))
        assert g[IP].dst == f"{a + 1}.{b + 1}.{c + 1}.{d + 1}"
        assert checksums_ok(bytes(g))
    for src in flows:
        assert counters["entries"][f"{src}-flow"]["packets"] == 2
    assert counters["pipes"]["h2n"]["misses"] == 10
    assert counters["miss"]["installed"] == 10 and counters["miss"]["resubmitted"] == 10
    assert counters["ports"]["uplink"]["tx_packets"] == 20
    # the resubmitted frames are not counted a second time on their way to h2n
    assert counters["ports"]["vf0"]["rx_packets"] == 20
    assert counters["entries"]["root_host_to_net_vf0"]["packets"] == 20


# ---- test_run (no ports started) ---------------------------------------------------

def test_test_run_rewrites_and_counts():
    prefix = f"pfd{uuid.uuid4().hex[:5]}"
    frames = [[0, udp("192.168.1.10", "192.168.2.20", 1).hex()], [1, udp("10.0.0.1", "10.0.0.2", 2).hex()],
              [0, "00" * 10]]
    job = {"name": prefix, "mode": "test_run", "eal": eal_args(prefix, ["net_null0", "net_null1"]),
           "config": FWD_CONFIG, "bindings": {"a": "net_null0", "b": "net_null1"}, "frames": frames}
    res = last_json(run_job(job))
    first, second, short = res["results"]
    assert first["kind"] == "tx" and first["out_port"] == 1 and first["hops"] == 1
    out = Ether(bytes.fromhex(first["out"]))
    assert out[IP].dst == "10.9.9.9" and out[UDP].dport == 7777 and checksums_ok(bytes(out))
    assert second["kind"] == "tx" and second["out_port"] == 0
    assert bytes.fromhex(second["out"]) == bytes.fromhex(frames[1][1])
    assert short["kind"] == "drop" and short["drop_reason"] == 0   # PF_DROP_MALFORMED
    assert res["counters"]["entries"]["a_to_b"]["packets"] == 1
    assert res["counters"]["ports"]["a"]["drops"][0] == 1


def test_batch_install_into_the_software_tables():
    """pf_entry_add_batch on the software pipes: ids in order, a repeated key is one entry, frames hit the
    batch's entries; a request naming an undefined pipe stops its batch there (what came before stays)."""
    prefix = f"pfd{uuid.uuid4().hex[:5]}"
    config = {"name": "batch", "ports": [{"name": "a", "id": 0}, {"name": "b", "id": 1}],
              "pipes": [{"name": "root", "type": "basic", "root": True, "match": ["meta.port"], "fwd_miss": "drop",
                         "entries": [{"name": "from_a", "match": {"meta.port": "a"}, "fwd": "pipe:src"}]},
                        {"name": "src", "type": "basic", "match": ["ipv4.src"], "fwd": "port:b",
                         "fwd_miss": "drop"}]}
    first = [f"10.7.0.{i}" for i in range(50)] + ["10.7.0.3"]
    second = [f"10.8.0.{i}" for i in range(6)]
    frames = [[0, udp(src, "10.0.0.9", 1).hex()] for src in ("10.7.0.5", "10.7.0.3", "10.7.0.60", "10.8.0.1",
                                                             "10.8.0.3")]
    job = {"name": prefix, "mode": "test_run", "eal": eal_args(prefix, ["net_null0", "net_null1"]),
           "config": config, "bindings": {"a": "net_null0", "b": "net_null1"}, "frames": frames,
           "batches": [{"pipe": "src", "ipv4_src": first}, {"pipe": "src", "ipv4_src": second, "bad_pipe_at": 2}]}
    res = last_json(run_job(job))
    one, two = res["batches"]
    assert one["error"] is None and one["results"] == [0] * 51
    assert one["ids"][50] == one["ids"][3] and len(set(one["ids"])) == 50 and one["listed"] == sorted(set(one["ids"]))
    assert "entry 2 of 6: pipe 40 is not defined" in two["error"]
    assert two["results"] == [0, 0, -2, -125, -125, -125]           # ENOENT, then ECANCELED
    assert two["listed"] == sorted(set(one["ids"]) | set(two["ids"][:2]))
    hit5, hit3, miss, kept, cancelled = res["results"]
    assert (hit5["kind"], hit5["out_port"], hit5["entry_id"]) == ("tx", 1, one["ids"][5])
    assert hit3["entry_id"] == one["ids"][3] and miss["kind"] == "drop"
    assert kept["kind"] == "tx" and kept["entry_id"] == two["ids"][1] and cancelled["kind"] == "drop"
    counts = res["counters"]["entries"]
    assert counts["from_a"]["packets"] == 5


# ---- differential: same pipes, same frames on the eBPF datapath and the software pipes ----------

DIFF_CONFIG = {
    "name": "diff",
    "ports": [{"name": "a", "id": 0}, {"name": "b", "id": 1}],
    "pipes": [
        {"name": "root", "type": "control", "root": True, "match": ["meta.port", "ipv4.dst"],
         "actions": ["ipv4.dst", "eth.dst", "l4.dport"], "fwd_miss": "drop",
         "entries": [
             {"name": "to_b_rewrite", "priority": 1, "match": {"meta.port": "a", "ipv4.dst": "192.168.2.20"},
              "actions": {"ipv4.dst": "10.9.9.9", "eth.dst": "02:00:00:00:00:bb", "l4.dport": 7777},
              "fwd": "port:b"},
             {"name": "a_other", "priority": 5, "match": {"meta.port": "a"}, "fwd": "pipe:second"},
             {"name": "b_back", "priority": 5, "match": {"meta.port": "b"}, "fwd": "port:a"},
         ]},
        {"name": "second", "type": "basic", "match": ["ipv4.src"], "fwd": "port:b", "fwd_miss": "drop",
         "entries": [{"name": "from_one", "match": {"ipv4.src": "10.0.0.1"}}]},
    ],
}


def test_differential_against_ebpf():
    from pyflow.compiler import compile_program
    from pyflow.config.loader import load_config
    from pyflow.errors import PyflowError
    from pyflow.instance import Instance, verdict_kind

    frames = [(0, udp("192.168.1.10", "192.168.2.20", 1)), (0, udp("10.0.0.1", "10.0.0.2", 2)),
              (0, udp("10.0.0.3", "10.0.0.2", 3)), (1, udp("10.0.0.4", "10.0.0.5", 4)),
              (0, bytes(Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:01", type=0x0800)) + bytes(6)),
              (0, bytes(Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:01", type=0x88b5)))]
    p = f"pfd{uuid.uuid4().hex[:5]}"
    # eBPF side: ports bound to a veth pair of our own in this namespace
    sh("ip", "link", "add", f"{p}x0", "type", "veth", "peer", "name", f"{p}x1")
    try:
        program = compile_program(load_config(DIFF_CONFIG), {"a": f"{p}x0", "b": f"{p}x1"})
        try:
            inst = Instance.open("ebpf", p, no_pin=True, fresh=True)
            program.apply(inst)
        except PyflowError as exc:
            pytest.skip(f"ebpf backend cannot run here: {exc}")
        try:
            ebpf = []
            for port, f in frames:
                v, out = inst.test_run(port, f)
                ebpf.append({"kind": verdict_kind(v), "out_port": v.out_port, "drop_reason": v.drop_reason,
                             "last_pipe": v.last_pipe, "hops": v.hops, "out": out.hex() if v.kind == 0 else "",
                             "entry": program.names()["entries"].get(v.entry_id)})
            ebpf_entries = {n: c[0] for n, c in zip(program.entry_ids,
                                                   inst.counters_entries(list(program.entry_ids.values())).values())}
            ebpf_ports = {pp.name: inst.counters_port(pp.id) for pp in program.ports}
        finally:
            inst.close()
    finally:
        sh("ip", "link", "del", f"{p}x0", check=False)

    job = {"name": p, "mode": "test_run", "eal": eal_args(p, ["net_null0", "net_null1"]), "config": DIFF_CONFIG,
           "bindings": {"a": "net_null0", "b": "net_null1"}, "frames": [[port, f.hex()] for port, f in frames]}
    res = last_json(run_job(job))
    dpdk = [{"kind": x["kind"], "out_port": x["out_port"], "drop_reason": x["drop_reason"],
             "last_pipe": x["last_pipe"], "hops": x["hops"], "out": x["out"] if x["kind"] == "tx" else "",
             "entry": x["entry"]} for x in res["results"]]
    assert dpdk == ebpf
    assert {n: c["packets"] for n, c in res["counters"]["entries"].items()} == ebpf_entries
    for name, c in res["counters"]["ports"].items():
        for key in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "drops"):
            assert c[key] == ebpf_ports[name][key], (name, key)


# ---- differential: the resubmit path, packet resubmit through the real CLI on both backends -----------------

RESUBMIT_FLOWS = [f"192.168.99.{101 + i}" for i in range(10)]


def _resubmit_first_packets(backend: str, config: str) -> dict:
    """`pyflow run --backend BACKEND` on conf/resubmit.json in a `resubmit` lab of its own: the first frame
    of 10 flows from the user namespace misses h2n, is learned by the miss handler (AF_XDP on ebpf, the
    miss ring on dpdk) and resubmitted. Returns the counters over the control socket and the frames the
    net namespace received."""
    from pyflow import lab as labmod

    prefix = f"pfp{uuid.uuid4().hex[:4]}"
    lab = labmod.Lab("resubmit", prefix=prefix).up()
    run = None
    try:
        user, net = lab.host("user"), lab.host("net")
        args = ["--backend", backend, "-j", config, "--instance", prefix, "--fresh", "--stats-interval", "0.2"]
        if backend == "dpdk":
            args += ["--port", "uplink=net_af_packet0", "--port", "vf0=net_af_packet1", "--",
                     *eal_args(prefix, [f"net_af_packet0,iface={net.root_ifname}",
                                        f"net_af_packet1,iface={user.root_ifname}"])[1:]]
        else:
            args += lab.port_args()
        run = PyflowRun(args)
        run.ready(60)
        frames = [labmod.eth(net.mac, user.mac, 0x0800,
                             labmod.ipv4_udp(src, "20.1.1.100", labmod.payload_tag("first", i), dport=4000))
                  for i, src in enumerate(RESUBMIT_FLOWS)]
        with labmod.Capture(lab, "net") as cap:
            lab.send_frames("user", frames)
            wait_until(lambda: len([f for f in cap.frames if b"pfl first" in f]) >= len(frames), 20)
            # the counters once the handler has resubmitted every first frame and the uplink sent it
            counters = wait_until(lambda: counters_json(prefix), 10, until=lambda c: min(
                c["miss_handler"]["resubmitted"], c["ports"]["uplink"]["tx_packets"]) >= len(frames),
                what="every first frame resubmitted and sent")
        assert run.stop(signal.SIGINT, 30.0) == 0, "\n".join(run.stderr[-20:])
        created = [line.split("Created flow for IP ")[1].strip() for line in run.stderr if "Created flow for IP" in line]
        # from the ethertype on: each lab has MAC addresses of its own
        return {"counters": counters, "created": created,
                "frames": sorted(f[12:] for f in cap.frames if b"pfl first" in f)}
    finally:
        if run is not None:
            run.stop(signal.SIGKILL)
        lab.down()
        shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
        shutil.rmtree(f"/sys/fs/bpf/pyflow/{prefix}", ignore_errors=True)


@pytest.mark.parametrize("root_action", ["none", "dec_ttl", "clone"])
def test_differential_resubmit_against_ebpf(tmp_path, root_action):
    """The packet-resubmit scenario's first packets on both backends: the same learned entries, and a resubmitted frame
    counted the same way (from the pipe that missed on), so every counter agrees with the resubmit example's.
    With a TTL decrement on the root entry, the resubmitted frame must not get it twice; with a clone action there,
    it is cloned once, where its replayed walk ends (after the learned entry's rewrite)."""
    config = str(ROOT / "conf" / "resubmit.json")
    if root_action != "none":
        cfg = json.loads(pathlib.Path(config).read_text())
        root = next(p for p in cfg["pipes"] if p.get("root"))
        root["actions"] = [root_action]
        entry = next(e for e in root["entries"] if e["name"] == "root_host_to_net_vf0")
        if root_action == "clone":
            cfg["sessions"] = [{"id": 1, "name": "copy_to_uplink",
                                "members": [{"port": "uplink", "instance": 1, "class_of_service": 0, "truncate": 0}]}]
            entry["actions"] = {"clone": 1}
        else:
            entry["actions"] = {"dec_ttl": True}
        config = str(tmp_path / f"resubmit-{root_action}.json")
        pathlib.Path(config).write_text(json.dumps(cfg))
    runs = {backend: _resubmit_first_packets(backend, config) for backend in ("ebpf", "dpdk")}

    def view(run: dict) -> dict:
        c = run["counters"]
        return {
            "created": run["created"],
            "static": {e["name"]: e["packets"] for e in c["static_entries"] + c["miss_paths"]},
            "learned": {e["name"]: (e["packets"], e["bytes"]) for e in c["learned_entries"]},
            "pipe_misses": {e["name"]: e["packets"] for e in c["pipe_misses"]},
            "pipes": c["pipes"],
            # the attach mode is a property of the ebpf backend, not a counter
            "ports": {n: {k: v for k, v in p.items() if k != "xdp_mode"} for n, p in c["ports"].items()},
            "installed": c["miss_handler"]["installed"], "resubmitted": c["miss_handler"]["resubmitted"],
            "frames": run["frames"],
        }

    ebpf, dpdk = view(runs["ebpf"]), view(runs["dpdk"])
    for key in ebpf:
        assert dpdk[key] == ebpf[key], (key, ebpf[key], dpdk[key])
    # and both are the resubmit example's numbers
    n = len(RESUBMIT_FLOWS)
    assert ebpf["created"] == [f"{s}->20.1.1.100" for s in RESUBMIT_FLOWS]
    assert ebpf["static"] == {"root_net_to_host": 0, "root_host_to_net_vf0": n, "n2h_to_vf0": 0, "rss_pipe": n}
    assert {name: pk for name, (pk, _) in ebpf["learned"].items()} == {f"{s}-flow": 1 for s in RESUBMIT_FLOWS}
    assert list(ebpf["pipe_misses"].values()) == [n]
    assert ebpf["pipes"] == {"root": {"hits": n, "misses": 0}, "n2h": {"hits": 0, "misses": 0},
                             "h2n": {"hits": n, "misses": n}}
    copies = 2 if root_action == "clone" else 1
    assert (ebpf["ports"]["vf0"]["rx_packets"], ebpf["ports"]["uplink"]["tx_packets"]) == (n, copies * n)
    assert (ebpf["installed"], ebpf["resubmitted"], len(ebpf["frames"])) == (n, n, copies * n)
    if root_action == "clone":
        # the copy is the frame as the walk leaves ingress: rewritten by the learned entry, as the original
        assert ebpf["frames"][::2] == ebpf["frames"][1::2]
    # IPv4 TTL (the frames start at the ethertype): decremented once on the root entry, or not at all
    assert {f[2 + 8] for f in ebpf["frames"]} == {63 if root_action == "dec_ttl" else 64}


# ---- rte_flow: validation report, creation attempted, fallback --------------------------------

@pytest.mark.parametrize("mode", ["auto", "force", "off"])
def test_rte_flow_report_and_fallback(mode):
    """No PMD here offloads: auto reports each pipe's refusal, force makes the PMD refuse at rule creation
    (every rule created so far is destroyed), off never asks. Every mode then forwards in software."""
    prefix = f"pfd{uuid.uuid4().hex[:5]}"
    job = {"name": prefix, "mode": "serve", "duration": 0.5, "eal": eal_args(prefix, ["net_null0", "net_null1"]),
           "config": str(ROOT / "conf" / "resubmit.json"),
           "bindings": {"uplink": "net_null0", "vf0": "net_null1"}}
    r = run_job(job, env={"PYFLOW_DPDK_RTE_FLOW": mode})
    assert r.returncode == 0, r.stderr
    ready = json.loads(r.stdout.splitlines()[0])
    reason = ready["info"]["mode_reason"]
    refusals = [line for line in r.stderr.splitlines() if "software (rte_flow: " in line]
    if mode == "auto":
        assert reason.startswith("rte_flow accepted 0 of 3 pipes on every port (net_null)"), reason
        assert len(refusals) == 3 * 2, r.stderr                # every pipe on every port, with the PMD's message
    elif mode == "force":
        assert reason.startswith("rte_flow refused at creation (miss rule of pipe 0 on net_null0: "), reason
        assert "all rules removed, the software pipes run the pipeline" in r.stderr
    else:
        assert reason.startswith("rte_flow off") and not refusals and "no template API" not in r.stderr
    assert "rules destroyed" not in r.stderr                   # nothing was left to destroy
    # the software pipes still run: the mbufs of the null PMD's rx reach root and are counted
    counters = last_json(r)["counters"]
    assert counters["ports"]["uplink"]["rx_packets"] > 0
