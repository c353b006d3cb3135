"""Helpers shared by the traffic tiers: a `pyflow run` subprocess, the CLI, polling, tagged frames."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

from pyflow.lab import parse_frame, read_tag


def pyflow_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run `python -m pyflow ARGS...`; raises with stderr when check and the exit code is not 0."""
    r = subprocess.run([sys.executable, "-P", "-m", "pyflow", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise AssertionError(f"pyflow {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
    return r


def counters_json(instance: str) -> dict:
    """`pyflow counters -o json` of a running instance, over its control socket."""
    return json.loads(pyflow_cli("counters", "--instance", instance, "-o", "json").stdout)


def wait_until(probe, timeout: float = 5.0, interval: float = 0.05, *, until=bool, what: str | None = None):
    """Poll probe() until until(value) holds (by default: the value is truthy) and return that value.

    Tests wait on the condition they assert, never for a fixed time: a loaded host only makes them slower.
    On timeout the last value is returned for the caller to check; with `what`, an AssertionError names
    what did not happen and shows the last value seen instead."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value):
            return value
        if time.monotonic() >= deadline:
            if what is not None:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; "
                                     f"last seen: {repr(value)[:2000]}")
            return value
        time.sleep(interval)


def tag_seqs(frames, tag: str) -> list[int]:
    """Sequence numbers of the frames carrying payload_tag(tag, seq), in arrival order."""
    out = []
    for frame in list(frames):
        parsed = parse_frame(frame)
        found = parsed and read_tag(parsed)
        if found and found[0] == tag:
            out.append(found[1])
    return out


class PyflowRun:
    """`python -P -m pyflow run ...` with stdout and stderr collected line by line."""

    def __init__(self, args: list[str], wrapper: list[str] = ()):
        self.args = args
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.proc = subprocess.Popen([*wrapper, sys.executable, "-P", "-m", "pyflow", "run", *args],
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self._threads = [threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
                         for stream, sink in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr))]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, sink):
        for line in stream:
            sink.append(line.rstrip("\n"))

    def wait_for(self, match, timeout: float = 30.0, stream: str = "stderr") -> str | None:
        """The latest line containing `match` (a string) or satisfying it (a predicate), or None after timeout
        or once the process has exited without printing one."""
        sink = self.stderr if stream == "stderr" else self.stdout
        pred = match if callable(match) else (lambda line: match in line)

        def probe():
            exited = self.proc.poll() is not None
            if exited:
                self._drain()
            return next((line for line in reversed(list(sink)) if pred(line)), None), exited

        return wait_until(probe, timeout, until=lambda v: v[0] is not None or v[1])[0]

    def _drain(self) -> None:
        """Wait for the pumps to read what the exited process wrote."""
        for t in self._threads:
            t.join(timeout=5)

    def ready(self, timeout: float = 30.0) -> None:
        if not self.wait_for("Waiting for signal", timeout):
            self.stop()
            raise AssertionError(f"pyflow run {' '.join(self.args)} did not start:\n" + "\n".join(self.stderr[-30:]))

    def stop(self, sig=signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._drain()
        return self.proc.returncode
