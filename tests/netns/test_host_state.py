"""What `pyflow` leaves on the host: `lab up|list|down` removes exactly what it made, and a run
whose configuration cannot be applied attaches and pins nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CONF = os.path.join(os.path.dirname(__file__), "..", "..", "conf", "resubmit.json")


def pyflow(*args, check=True):
    # -P: never import the source tree instead of the installed package
    r = subprocess.run([sys.executable, "-P", "-m", "pyflow", *args], capture_output=True, text=True, timeout=60)
    if check and r.returncode:
        raise AssertionError(f"pyflow {' '.join(args)} exited {r.returncode}: {r.stderr}")
    return r


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def link_names() -> set[str]:
    out = json.loads(subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True).stdout)
    return {link["ifname"] for link in out}


def test_lab_up_list_down_removes_exactly_what_it_made(unique_prefix):
    # only names under this lab's prefix: other runs may come and go on the same host meanwhile
    def ours(names):
        return {n for n in names if n.startswith(unique_prefix)}

    assert not ours(netns_names()) and not ours(link_names())
    up = json.loads(pyflow("lab", "up", "-t", "three-host", "--prefix", unique_prefix, "-o", "json").stdout)
    try:
        assert {h["netns"] for h in up["hosts"].values()} == ours(netns_names())
        assert set(up["ports"].values()) == ours(link_names())
        listed = json.loads(pyflow("lab", "list", "-o", "json").stdout)
        assert any(lab["prefix"] == unique_prefix and lab["alive"] for lab in listed)
    finally:
        pyflow("lab", "down", "--prefix", unique_prefix)
    assert not ours(netns_names()) and not ours(link_names())
    assert not any(lab["prefix"] == unique_prefix for lab in json.loads(pyflow("lab", "list", "-o", "json").stdout))


@pytest.fixture
def veth(unique_prefix):
    a = f"{unique_prefix}a"
    subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", f"{unique_prefix}b"], check=True)
    yield a
    subprocess.run(["ip", "link", "del", a], capture_output=True)


def test_run_that_cannot_bind_every_port_attaches_and_pins_nothing(veth, unique_prefix):
    instance = f"{unique_prefix}run"
    r = pyflow("run", "-b", "ebpf", "-j", CONF, "-p", f"uplink={veth}", "-p", f"vf0={unique_prefix}zz",
               "-i", instance, "-d", "1", check=False)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and f"--port vf0={unique_prefix}zz" in r.stderr
    link = json.loads(subprocess.run(["ip", "-j", "-d", "link", "show", veth], capture_output=True, text=True).stdout)[0]
    assert "xdp" not in link, link.get("xdp")
    assert not os.path.exists(f"/sys/fs/bpf/pyflow/{instance}")
    assert not os.path.exists(f"/run/pyflow/{instance}.sock")
