"""`pyflow lab up -j CONFIG`: a namespace per port of any config, and the config runs on it."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pyflow.lab import eth, ipv4_udp, payload_tag
from tests.pyflow_testing import PyflowRun, counters_json, pyflow_cli, wait_until

CONF = Path(__file__).resolve().parents[2] / "conf"
CONFIGS = sorted(p for p in CONF.glob("*.json") if p.name != "schema.json")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_runs_on_its_own_lab(path, pfl_prefix, instance_name):
    up = json.loads(pyflow_cli("lab", "up", "-j", str(path), "--prefix", pfl_prefix, "-o", "json").stdout)
    run = None
    try:
        config = json.loads(path.read_text())
        assert set(up["ports"]) == {p["name"] for p in config["ports"]}
        args = [a for port, ifname in up["ports"].items() for a in ("--port", f"{port}={ifname}")]
        run = PyflowRun(["--backend", "ebpf", "-j", str(path), *args, "--instance", instance_name, "--fresh",
                         "--stats-interval", "0.5"])
        run.ready()
        # a frame from the first port's namespace reaches the datapath on that port
        first = config["ports"][0]["name"]
        host = up["hosts"][first]
        frame = eth("ff:ff:ff:ff:ff:ff", host["mac"], 0x0800,
                    ipv4_udp(host["ips"][0].split("/")[0], "10.0.0.254", payload_tag("lab", 0)))
        send = subprocess.run(["ip", "netns", "exec", host["netns"], "python3", "-c",
                               "import socket,sys; s=socket.socket(socket.AF_PACKET, socket.SOCK_RAW); "
                               f"s.bind(('{host['ifname']}', 0)); s.send(bytes.fromhex(sys.argv[1]))", frame.hex()],
                              capture_output=True, text=True)
        assert send.returncode == 0, send.stderr
        assert wait_until(lambda: counters_json(instance_name)["ports"][first]["rx_packets"] >= 1, 5)
        assert run.stop() == 0
    finally:
        if run is not None:
            run.stop()
        pyflow_cli("lab", "down", "--prefix", pfl_prefix)
    assert not any(ns.startswith(pfl_prefix) for ns in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                                        text=True).stdout.split())
