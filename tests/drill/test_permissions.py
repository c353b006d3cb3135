"""The control socket and the pins are root-only; a non-root user gets one clear line, changes nothing.

A running instance's control directory and socket are 0700/0600 and its pin directories 0700 with
owner-only pinned objects. The CLI run as nobody (setpriv) cannot read counters, add entries, start
a run on the instance or look into the pins, each with a one-line error saying why, and the instance
keeps forwarding untouched.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import uuid

import pytest

from tests.drill.restart_lab import Receiver, write_config
from tests.netns.test_miss import send
from tests.pyflow_testing import PyflowRun, counters_json, wait_until

NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all"]


@pytest.fixture(scope="module")
def lab():
    from pyflow.lab import Lab

    with Lab("resubmit", prefix=f"pfp{uuid.uuid4().hex[:5]}") as lab:
        yield lab


def as_nobody(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NOBODY, sys.executable, "-P", "-m", "pyflow", *args], capture_output=True, text=True,
                          timeout=60, cwd="/")


def mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_socket_and_pins_are_root_only(lab, tmp_path, figures):
    name = f"{lab.prefix}perm"
    # a config nobody can read: what stops nobody must be the privileges, not the file
    public = tempfile.mkdtemp(prefix=f"{lab.prefix}-", dir="/tmp")
    os.chmod(public, 0o755)
    cfg = write_config(pathlib.Path(public) / "resubmit.json")
    os.chmod(cfg, 0o644)
    run = PyflowRun(["--backend", "ebpf", "-j", cfg, *lab.port_args(), "--instance", name, "--fresh"])
    rx = Receiver(lab)
    refused = []
    try:
        run.ready()
        sock = f"/run/pyflow/{name}.sock"
        pins = f"/sys/fs/bpf/pyflow/{name}"
        assert (mode("/run/pyflow"), mode(sock)) == (0o700, 0o600)
        assert (mode("/sys/fs/bpf/pyflow"), mode(pins)) == (0o700, 0o700)
        for root, dirs, files in os.walk(pins):
            for n in dirs + files:
                m = mode(os.path.join(root, n))
                assert m & 0o077 == 0, f"{os.path.join(root, n)} is {oct(m)}"

        attempts = {
            "counters": ["counters", "--instance", name],
            "entry add": ["entry", "add", "--instance", name, "h2n", "x", "--match", "ipv4.src=10.1.1.1"],
            "entry list": ["entry", "list", "--instance", name],
            "run": ["run", "--backend", "ebpf", "-j", cfg, *lab.port_args(), "--instance", name],
        }
        for what, args in attempts.items():
            r = as_nobody(*args)
            lines = r.stderr.strip().splitlines()
            assert r.returncode != 0, f"{what} as nobody: exit 0"
            assert len(lines) == 1 and lines[0].startswith("pyflow "), f"{what} as nobody: {r.stderr!r}"
            assert "root" in lines[0] or "ermission" in lines[0], f"{what} as nobody: {lines[0]}"
            refused.append(f"{what}: exit {r.returncode}: {lines[0]}")
        peek = subprocess.run([*NOBODY, sys.executable, "-c", f"import os; os.listdir({pins!r})"],
                              capture_output=True, text=True)
        assert peek.returncode != 0 and "PermissionError" in peek.stderr

        # untouched: still forwards, still answers root, no entry was added
        send(lab, ["192.168.66.1"])
        assert wait_until(lambda: rx.seen("192.168.66.1"), 5)
        snap = counters_json(name)
        assert [e["name"] for e in snap["learned_entries"]] == ["192.168.66.1-flow"]
        assert run.proc.poll() is None
    finally:
        rx.finish()
        code = run.stop(signal.SIGINT)
        shutil.rmtree(public, ignore_errors=True)
    assert code == 0
    for line in refused:
        figures("as nobody, " + line)


def test_a_loose_state_directory_is_made_root_only_and_a_foreign_one_refused(tmp_path):
    from pyflow.errors import UsageError
    from pyflow.paths import ensure_private_dir

    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o1777)        # what a tmpfs mounted over /run/pyflow starts as
    ensure_private_dir(str(loose), "control socket directory")
    assert mode(str(loose)) == 0o700
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    os.chown(foreign, 65534, 65534)
    with pytest.raises(UsageError, match="owned by uid 65534"):
        ensure_private_dir(str(foreign), "control socket directory")
