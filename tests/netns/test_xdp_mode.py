"""--xdp-mode: the mode each port got is logged and shown in counters and status; the veth-peer warning
comes once per port."""
from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.netns.test_static import N, exchange, frames_for, static_config, tagged
from tests.pyflow_testing import pyflow_cli

STATIC = str(Path(__file__).resolve().parents[2] / "conf" / "static-forward.json")


@pytest.mark.parametrize("mode, shown", [("auto", "native"), ("generic", "generic")])
def test_xdp_mode_is_applied_logged_and_shown(three_host_lab, instance_name, pyflow_run, tmp_path, mode, shown):
    lab = three_host_lab
    h1 = lab.host("h1")
    cfg = tmp_path / "static.json"
    cfg.write_text(json.dumps(static_config(lab)))
    run = pyflow_run("--backend", "ebpf", "-j", str(cfg), *lab.port_args(), "--instance", instance_name,
                     "--fresh", "--xdp-mode", mode)
    for port in ("p1", "p2", "p3"):
        ifname = lab.ports[port]
        assert run.wait_for(f"({ifname}): XDP attached in {shown} mode", 1), port
        link = subprocess.run(["ip", "-d", "link", "show", ifname], capture_output=True, text=True).stdout
        assert ("xdpgeneric" in link) == (shown == "generic"), link
    got = exchange(lab, [("h1", frames_for("mode", "10.0.0.1", "10.0.0.2", N, h1.root_mac, h1.mac))], [("h2", "mode")])
    tagged(got, "h2", "mode")
    counters = json.loads(pyflow_cli("counters", "--instance", instance_name, "-o", "json").stdout)
    assert {p: c["xdp_mode"] for p, c in counters["ports"].items()} == {"p1": shown, "p2": shown, "p3": shown}
    detail = pyflow_cli("counters", "--instance", instance_name, "--detail").stdout
    assert f"p1           {shown}" in detail
    assert run.stop(signal.SIGINT) == 0


def test_a_bad_xdp_mode_is_a_usage_error():
    r = pyflow_cli("run", "--backend", "ebpf", "-j", STATIC, "--xdp-mode", "turbo", check=False)
    assert r.returncode == 2 and "--xdp-mode" in r.stderr
    r = pyflow_cli("run", "--backend", "dpdk", "-j", STATIC, "--xdp-mode", "generic", check=False)
    assert r.returncode == 2 and "only for --backend ebpf" in r.stderr


def test_veth_peer_warning_once_per_port(three_host_lab, instance_name, pyflow_run, tmp_path):
    lab = three_host_lab
    h2 = lab.host("h2")
    # take the XDP_PASS program off h2's namespace end: redirects into p2 would be dropped there
    subprocess.run(["ip", "-n", h2.netns, "link", "set", "dev", h2.ifname, "xdp", "off"], check=True)
    subprocess.run(["ip", "netns", "exec", h2.netns, "ethtool", "-K", h2.ifname, "gro", "off"], check=True)
    cfg = tmp_path / "static.json"
    cfg.write_text(json.dumps(static_config(lab)))
    run = pyflow_run("--backend", "ebpf", "-j", str(cfg), *lab.port_args(), "--instance", instance_name, "--fresh")
    run.stop(signal.SIGINT)
    warned = [line for line in run.stderr if "veth peer" in line and h2.ifname in line]
    assert len(warned) == 1 and lab.ports["p2"] in warned[0], warned
