"""Fixtures for real-traffic tests: labs, a `pyflow run` subprocess, frame builders.

Everything created here carries a unique "pfl..." prefix and is removed after
the test: namespaces and veths (pyflow.lab), the control socket (pyflow itself)
and the instance's pins under /sys/fs/bpf/pyflow/<instance>.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

PIN_ROOT = "/sys/fs/bpf/pyflow"


@pytest.fixture
def pfl_prefix():
    return f"pfl{uuid.uuid4().hex[:4]}"


@pytest.fixture
def three_host_lab(pfl_prefix):
    from pyflow.lab import Lab

    with Lab("three-host", prefix=pfl_prefix) as lab:
        yield lab


@pytest.fixture
def instance_name(pfl_prefix):
    name = f"{pfl_prefix}-test"
    yield name
    shutil.rmtree(os.path.join(PIN_ROOT, name), ignore_errors=True)


class PyflowRun:
    """`python -m pyflow run ...` with stdout/stderr collected line by line."""

    def __init__(self, args: list[str]):
        self.args = args
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-P", "-m", "pyflow", "run", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self._threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout), daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr), daemon=True)]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, sink):
        for line in stream:
            sink.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 30.0, stream: str = "stderr") -> bool:
        sink = self.stderr if stream == "stderr" else self.stdout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(sink)):
                return True
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the pumps drain
                return any(text in line for line in list(sink))
            time.sleep(0.05)
        return False

    def ready(self, timeout: float = 30.0) -> None:
        if not self.wait_for("Waiting for signal", timeout):
            self.stop()
            raise AssertionError("pyflow run did not start:\n" + "\n".join(self.stderr[-30:]))

    def stop(self, sig=signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for t in self._threads:
            t.join(timeout=2)
        return self.proc.returncode


@pytest.fixture
def pyflow_run():
    runs: list[PyflowRun] = []

    def start(*args: str) -> PyflowRun:
        r = PyflowRun(list(args))
        runs.append(r)
        r.ready()
        return r

    yield start
    for r in runs:
        r.stop()


def _pyflow_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-P", "-m", "pyflow", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise AssertionError(f"pyflow {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
    return r


@pytest.fixture
def pyflow_cli():
    """Run `python -m pyflow ARGS...`; raises with stderr when check and the exit code is not 0."""
    return _pyflow_cli


@pytest.fixture
def read_counters():
    """Counters of a running instance, through `pyflow counters -o json`; also name -> packets."""

    def read(instance: str) -> tuple[dict, dict[str, int]]:
        snap = json.loads(_pyflow_cli("counters", "--instance", instance, "-o", "json").stdout)
        packets = {e["name"]: e["packets"] for e in snap["static_entries"] + snap["learned_entries"]}
        return snap, packets

    return read


