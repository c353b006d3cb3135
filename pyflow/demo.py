"""The packet-resubmit demo, end to end on real namespaces and real packets.

    python -m pyflow.demo [--rounds N] [--keep-output]

1. builds the `resubmit` lab: a user namespace behind vf0, a network
   namespace behind uplink;
2. runs `pyflow run --backend ebpf -j conf/resubmit.json --port ...` as a
   subprocess (so SIGINT handling is the real thing);
3. sends N rounds of UDP from 192.168.99.101-110 to 20.1.1.100: the first
   frame of each flow misses the egress pipe, the miss handler creates the
   entry (ipv4.dst = ipv4.src + 1.1.1.1) and resubmits the frame;
4. checks on the network side that every frame arrived exactly once,
   rewritten, with valid checksums, and that the counters agree;
5. stops pyflow with SIGINT and removes everything it created.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from .paths import PIN_ROOT
from .lab import Capture, Lab, ip_add, parse_frame

SOURCES = [f"192.168.99.{i}" for i in range(101, 111)]
DEST = "20.1.1.100"
DPORT = 7777
REWRITE = "1.1.1.1"


def find_config(name: str) -> Path:
    """conf/<name> next to the sources (repo checkout) or shipped in the package."""
    here = Path(__file__).resolve().parent
    candidates = []
    if os.environ.get("PYFLOW_CONF_DIR"):
        candidates.append(Path(os.environ["PYFLOW_CONF_DIR"]))
    candidates += [Path.cwd() / "conf", here.parent / "conf", here / "data" / "conf"]
    # An installed package lives in <repo>/<venv>/lib/pythonX/site-packages/pyflow.
    candidates += [p / "conf" for p in here.parents]
    for c in candidates:
        if (c / name).is_file():
            return c / name
    raise SystemExit(f"demo: cannot find conf/{name} (set PYFLOW_CONF_DIR)")


def say(text: str = "") -> None:
    print(text, flush=True)


class PyflowProcess:
    """`pyflow run` in a subprocess; its output is echoed (indented) and kept."""

    def __init__(self, args: list[str]):
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.proc = subprocess.Popen([sys.executable, "-P", "-m", "pyflow", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     start_new_session=True)  # our own SIGINT is forwarded deliberately
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            print(f"  | {line}", flush=True)
            if "Waiting for signal" in line:
                self.ready.set()

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready.wait(0.1):
                return True
            if self.proc.poll() is not None:
                return False
        return False

    def interrupt(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=2)
        return self.proc.returncode


def send_rounds(lab: Lab, rounds: int, gap: float) -> list[tuple[str, int]]:
    sent = []
    socks = {}
    try:
        for src in SOURCES:
            s = lab.socket("user")
            s.bind((src, 0))
            socks[src] = s
        for r in range(1, rounds + 1):
            for src in SOURCES:
                socks[src].sendto(f"pyflow-demo round={r} src={src}".encode(), (DEST, DPORT))
                sent.append((src, r))
            time.sleep(gap)
    finally:
        for s in socks.values():
            s.close()
    return sent


def check_arrivals(frames: list[bytes], sent: list[tuple[str, int]]) -> tuple[list[str], int]:
    """Problems found, and the number of demo frames that arrived correctly."""
    problems = []
    seen: dict[tuple[str, int], int] = {}
    good = 0
    for f in frames:
        p = parse_frame(f)
        if not p or p.get("proto") != 17 or p.get("dport") != DPORT:
            continue
        text = p["payload"].decode(errors="replace")
        if not text.startswith("pyflow-demo"):
            continue
        fields = dict(kv.split("=", 1) for kv in text.split()[1:])
        key = (fields["src"], int(fields["round"]))
        seen[key] = seen.get(key, 0) + 1
        want_dst = ip_add(fields["src"], REWRITE)
        bad = []
        if p["ip_src"] != fields["src"]:
            bad.append(f"src {p['ip_src']}")
        if p["ip_dst"] != want_dst:
            bad.append(f"dst {p['ip_dst']} (expected {want_dst})")
        if not p["ip_csum_ok"]:
            bad.append("bad IPv4 checksum")
        if not p.get("l4_csum_ok"):
            bad.append("bad UDP checksum")
        if bad:
            problems.append(f"{key[0]} round {key[1]}: " + ", ".join(bad))
        else:
            good += 1
    for key in sent:
        n = seen.get(key, 0)
        if n != 1:
            problems.append(f"{key[0]} round {key[1]}: arrived {n} times")
    return problems, good


def remove_pins(instance: str) -> None:
    path = os.path.join(PIN_ROOT, instance)
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pyflow.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds of 10 flows (default 3)")
    ap.add_argument("--gap", type=float, default=1.2, help="seconds between rounds (default 1.2)")
    ap.add_argument("--prefix", default=None, help="lab name prefix (default pfl + random)")
    ap.add_argument("--peer-mode", choices=["xdp", "gro"], default="xdp")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        say("demo: needs root (network namespaces, XDP)")
        return 2
    config = find_config("resubmit.json")
    prefix = args.prefix or f"pfl{uuid.uuid4().hex[:4]}"
    instance = f"{prefix}-resubmit"
    # Installed explicitly: a shell that starts us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    lab = Lab("resubmit", prefix=prefix, peer_mode=args.peer_mode)
    pyflow = None
    ok = False
    try:
        say(f"== lab: building the resubmit topology (prefix {prefix})")
        lab.up()
        user, net = lab.host("user"), lab.host("net")
        say(f"   user app ns {user.netns} ({user.ip}-110) -> vf0 = {user.root_ifname}")
        say(f"   network ns  {net.netns} ({net.ip})        <- uplink = {net.root_ifname}")
        run_args = ["run", "--backend", "ebpf", "-j", str(config), *lab.port_args(), "--instance", instance,
                    "--fresh", "--stats-interval", "1"]
        say(f"== pyflow {' '.join(run_args)}")
        pyflow = PyflowProcess(run_args)
        if not pyflow.wait_ready(30):
            say("demo: FAIL: pyflow did not start (see its output above)")
            return 1
        with Capture(lab, "net") as capture:
            say(f"== sending {args.rounds} rounds from {len(SOURCES)} sources to {DEST}:{DPORT}")
            sent = send_rounds(lab, args.rounds, args.gap)
            time.sleep(1.0)
        counters = subprocess.run([sys.executable, "-P", "-m", "pyflow", "counters", "--instance", instance, "-o",
                                   "json"], capture_output=True, text=True, timeout=20)
        say("== stopping pyflow with SIGINT")
        code = pyflow.interrupt()
        pyflow = None
        ok = verdict(capture.frames, sent, counters, code, args.rounds)
    except KeyboardInterrupt:
        say("demo: interrupted; cleaning up")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        if pyflow is not None:
            pyflow.interrupt()
        lab.down()
        remove_pins(instance)
        say(f"== lab {prefix} removed")
    return 0 if ok else 1


_MAIN_PID = os.getpid()


def _raise_interrupt(signum, frame):
    # Forked helpers (pyroute2 opens namespace sockets in children) inherit this
    # handler: they must just die, never unwind into the demo's cleanup.
    if os.getpid() != _MAIN_PID:
        os._exit(128 + signum)
    raise KeyboardInterrupt


def verdict(frames, sent, counters, code, rounds) -> bool:
    problems, good = check_arrivals(frames, sent)
    learned = {}
    if counters.returncode == 0:
        data = json.loads(counters.stdout)
        learned = {e["name"]: e["packets"] for e in data.get("learned_entries", [])}
        for src in SOURCES:
            name = f"{src}-flow"
            if learned.get(name) != rounds:
                problems.append(f"counter {name} is {learned.get(name)}, expected {rounds}")
    else:
        problems.append(f"pyflow counters failed: {counters.stderr.strip()}")
    if code != 0:
        problems.append(f"pyflow exited with {code} after SIGINT")
    say("== verdict")
    say(f"   {good}/{len(sent)} frames arrived on the network side rewritten (dst = src + {REWRITE}), "
        f"checksums valid")
    say(f"   {len(learned)} flows learned, counters {'match' if not any('counter' in p for p in problems) else 'differ'}")
    for p in problems[:20]:
        say(f"   problem: {p}")
    say("PASS" if not problems else f"FAIL ({len(problems)} problems)")
    return not problems


if __name__ == "__main__":
    sys.exit(main())
