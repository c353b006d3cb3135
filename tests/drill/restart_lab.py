"""Shared pieces of the traffic drills: the resubmit lab, a paced sender and a receiver that
counts every test frame arriving in the network namespace."""
from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time

from tests.netns.test_miss import parse_udp, pipeline_config, udp_frame
from tests.pyflow_testing import wait_until

SO_RCVBUFFORCE = 33


class Receiver(threading.Thread):
    """Every test frame arriving in the lab's network namespace: (src, dst, seq) in arrival order."""

    def __init__(self, lab):
        super().__init__(daemon=True)
        self.sock = lab.capture_socket("net")
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)
        self.sock.settimeout(0.1)
        self.frames: list[tuple[str, str, int]] = []
        self.stop_event = threading.Event()
        self.start()

    def run(self):
        while not self.stop_event.is_set():
            try:
                frame = self.sock.recv(4096)
            except (socket.timeout, OSError):
                continue
            p = parse_udp(frame)
            if p:
                self.frames.append(p[:3])

    def seen(self, src: str) -> list[int]:
        return [seq for s, _, seq in list(self.frames) if s == src]

    def missing(self, sent: dict[str, list[int]]) -> int:
        """How many of the frames sent (source -> seqs) have not arrived."""
        got: dict[str, set[int]] = {}
        for s, _, seq in list(self.frames):
            got.setdefault(s, set()).add(seq)
        return sum(len(set(seqs) - got.get(src, set())) for src, seqs in sent.items())

    def drain(self, sent: dict[str, list[int]], timeout: float = 5.0) -> None:
        """Until every frame sent has arrived, or the timeout: what is lost stays missing for the caller to count."""
        wait_until(lambda: self.missing(sent), timeout, until=lambda n: n == 0)

    def finish(self):
        self.stop_event.set()
        self.join(timeout=5)
        self.sock.close()


class Sender(threading.Thread):
    """Round-robin numbered frames over `sources` from the user namespace, one round per `gap` s."""

    def __init__(self, lab, sources: list[str], gap: float = 0.002, seq0: int = 1_000_000):
        super().__init__(daemon=True)
        self.lab, self.sources, self.gap = lab, sources, gap
        user, net = lab.host("user"), lab.host("net")
        self.macs = user.mac, net.mac
        self.sent: dict[str, list[int]] = {s: [] for s in sources}
        self.seq = seq0
        self.stop_event = threading.Event()

    def run(self):
        user = self.lab.host("user")
        with self.lab.socket("user", socket.AF_PACKET, socket.SOCK_RAW, 0) as s:
            s.bind((user.ifname, 0))
            while not self.stop_event.is_set():
                for src in self.sources:
                    self.seq += 1
                    s.send(udp_frame(*self.macs, src, "20.1.1.100", self.seq))
                    self.sent[src].append(self.seq)
                time.sleep(self.gap)    # pacing: a steady rate, not a flood

    def finish(self):
        self.stop_event.set()
        self.join(timeout=5)

    def total(self) -> int:
        return sum(len(v) for v in self.sent.values())


def xdp_prog_ids(ifnames) -> dict[str, int]:
    """The id of the XDP program attached to each interface (root namespace)."""
    out = {}
    for ifname in ifnames:
        text = subprocess.run(["ip", "-d", "link", "show", "dev", ifname], capture_output=True, text=True).stdout
        m = re.search(r"prog/xdp id (\d+)", text)
        out[ifname] = int(m.group(1)) if m else 0
    return out


def write_config(path, **policy) -> str:
    path.write_text(json.dumps(pipeline_config(**policy)))
    return str(path)
