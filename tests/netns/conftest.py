"""Fixtures for real-traffic tests: labs, a `pyflow run` subprocess, the CLI.

Everything created here carries a unique "pfl..." prefix and is removed after
the test: namespaces and veths (pyflow.lab), the control socket (pyflow itself)
and the instance's pins under /sys/fs/bpf/pyflow/<instance>.
"""
from __future__ import annotations

import os
import shutil
import uuid

import pytest

from tests.pyflow_testing import PyflowRun, counters_json, pyflow_cli

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


@pytest.fixture(name="pyflow_cli")
def pyflow_cli_fixture():
    """Run `python -m pyflow ARGS...`; raises with stderr when check and the exit code is not 0."""
    return pyflow_cli


@pytest.fixture
def read_counters():
    """Counters of a running instance, through `pyflow counters -o json`; also name -> packets."""

    def read(instance: str) -> tuple[dict, dict[str, int]]:
        snap = counters_json(instance)
        packets = {e["name"]: e["packets"] for e in snap["static_entries"] + snap["learned_entries"]}
        return snap, packets

    return read


