"""L2 flooding (as in the XDP/TC broadcast example) through `pyflow run` on a three-host lab: an ARP
broadcast from one host reaches every other host (DEVMAP broadcast in XDP,
one group per ingress port as in conf/broadcast.json) and never comes back
to the host that sent it."""
from __future__ import annotations

import os
import shutil
import uuid

import pytest

from tests.pyflow_testing import wait_until

CONF = os.path.join(os.path.dirname(__file__), "..", "..", "conf", "broadcast.json")
PIN_ROOT = "/sys/fs/bpf/pyflow"


@pytest.fixture
def pfr_lab():
    from pyflow.lab import Lab

    with Lab("three-host", prefix=f"pfr{uuid.uuid4().hex[:4]}") as lab:
        yield lab
        shutil.rmtree(os.path.join(PIN_ROOT, f"{lab.prefix}-bc"), ignore_errors=True)


def arp_requests(frames: list[bytes], target: str) -> int:
    from scapy.all import ARP, Ether

    return sum(1 for f in frames if ARP in Ether(f) and Ether(f)[ARP].op == 1 and Ether(f)[ARP].pdst == target)


@pytest.mark.parametrize("sender", ["h1", "h3"])
def test_broadcast_reaches_every_port_but_the_ingress_one(pfr_lab, pyflow_run, read_counters, sender):
    from pyflow.lab import Capture
    from scapy.all import ARP, Ether, raw

    instance = f"{pfr_lab.prefix}-bc"
    pyflow_run("-b", "ebpf", "-j", CONF, "-i", instance, "--fresh", *pfr_lab.port_args())
    host = pfr_lab.host(sender)
    request = raw(Ether(src="02:00:00:00:10:01", dst="ff:ff:ff:ff:ff:ff") /
                  ARP(hwsrc="02:00:00:00:10:01", psrc="10.0.0.99", pdst="10.0.0.77"))
    caps = {h: Capture(pfr_lab, h) for h in ("h1", "h2", "h3")}
    try:
        pfr_lab.send_frames(sender, [request] * 5)
        # every copy out: only then does none at the sender mean it got none
        wait_until(lambda: {h: arp_requests(c.frames, "10.0.0.77") for h, c in caps.items() if h != sender},
                   until=lambda got: all(n >= 5 for n in got.values()), what="5 copies at every other host")
    finally:
        got = {h: c.stop() for h, c in caps.items()}
    assert {h: arp_requests(f, "10.0.0.77") for h, f in got.items()} == \
        {h: (0 if h == sender else 5) for h in ("h1", "h2", "h3")}

    snap, packets = read_counters(instance)
    assert packets[f"bcast_from_p{sender[1]}"] == 5
    ports = snap["ports"]
    assert ports[host.port]["rx_packets"] == 5
    assert all(ports[f"p{i}"]["tx_packets"] == 5 for i in (1, 2, 3) if f"p{i}" != host.port)
