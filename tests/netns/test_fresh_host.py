"""`pyflow run` on a host where pyflow never ran: no bpffs mounted, no pin root, no /run/pyflow.

pyflow runs in a private mount namespace in which /sys/fs/bpf is unmounted and /run is an
empty tmpfs, so everything it needs must be created by pyflow itself. A second process
joined to that namespace keeps it alive after pyflow exits, to look at what stayed behind.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys

from tests.netns.test_static import N, exchange, frames_for, static_config, tagged
from tests.pyflow_testing import PyflowRun, wait_until

# a host on which pyflow never ran: nothing at /sys/fs/bpf, nothing under /run
FRESH_HOST = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
              "while umount -l /sys/fs/bpf 2>/dev/null; do :; done; mount -t tmpfs -o mode=0755 tmpfs /run && "
              "exec \"$@\"", "sh"]


def in_ns(pid: int, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", "-t", str(pid), "-m", *cmd], capture_output=True, text=True, timeout=30)


def test_run_creates_bpffs_pin_root_and_run_dir_and_a_clean_stop_removes_its_pins(three_host_lab, instance_name,
                                                                                   tmp_path):
    lab = three_host_lab
    h1 = lab.host("h1")
    cfg = tmp_path / "static.json"
    cfg.write_text(json.dumps(static_config(lab)))
    run = PyflowRun(["--backend", "ebpf", "-j", str(cfg), *lab.port_args(), "--instance", instance_name,
                     "--stats-interval", "0.5"], wrapper=FRESH_HOST)
    holder = None
    try:
        run.ready()
        assert run.wait_for("mounted bpffs at /sys/fs/bpf", 1), "no info line about mounting bpffs"
        pid = run.proc.pid
        assert in_ns(pid, "stat", "-f", "-c", "%T", "/sys/fs/bpf").stdout.strip() == "bpf_fs"
        modes = in_ns(pid, "stat", "-c", "%n %a", "/sys/fs/bpf/pyflow", f"/sys/fs/bpf/pyflow/{instance_name}",
                      "/run/pyflow", f"/run/pyflow/{instance_name}.sock").stdout.split("\n")
        assert modes[:4] == ["/sys/fs/bpf/pyflow 700", f"/sys/fs/bpf/pyflow/{instance_name} 700",
                             "/run/pyflow 700", f"/run/pyflow/{instance_name}.sock 600"]

        # it forwards
        got = exchange(lab, [("h1", frames_for("fresh", "10.0.0.1", "10.0.0.2", N, h1.root_mac, h1.mac))],
                       [("h2", "fresh")])
        assert all(p["ttl"] == 63 and p["ip_csum_ok"] for p in tagged(got, "h2", "fresh"))
        counters = in_ns(pid, sys.executable, "-P", "-m", "pyflow", "counters", "-i", instance_name, "-o", "json")
        assert counters.returncode == 0, counters.stderr
        assert {e["name"]: e["packets"] for e in json.loads(counters.stdout)["static_entries"]}["to_h2"] == N

        holder = subprocess.Popen(["nsenter", "-t", str(pid), "-m", "sleep", "60"])
        assert wait_until(lambda: in_ns(holder.pid, "test", "-d", f"/sys/fs/bpf/pyflow/{instance_name}")
                          .returncode == 0, 5)
        assert run.stop(signal.SIGINT) == 0
        # a clean stop takes its pins and socket away (without --keep-datapath)
        left = in_ns(holder.pid, "ls", "-A", "/sys/fs/bpf/pyflow", "/run/pyflow")
        assert instance_name not in left.stdout, left.stdout
    finally:
        run.stop()
        if holder is not None:
            holder.kill()
            holder.wait()
