"""Test tiers and capability probes.

Each tier is a directory and a marker. A test whose capability is missing is
skipped with a reason that names what is missing; under CI=true no tier may
skip (pytest_runtest_makereport turns skips into failures): without the DOCA SDK
the doca tier runs against the project's DOCA Flow simulator (tests/doca/sim).
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import uuid

import pytest

TIERS = ("unit", "bpf", "netns", "dpdk", "doca", "drill")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    # Measurements print figures rather than assert on them: they run only when asked for
    # (PYFLOW_MEASURE=1) and are deselected otherwise, so a CI run never counts them as skipped.
    if not os.environ.get("PYFLOW_MEASURE"):
        measured = [i for i in items if i.get_closest_marker("measure")]
        if measured:
            config.hook.pytest_deselected(items=measured)
            items[:] = [i for i in items if not i.get_closest_marker("measure")]
    for item in items:
        rel = os.path.relpath(str(item.fspath), os.path.dirname(__file__))
        tier = rel.split(os.sep)[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    # In CI every capability must be present (doca: the simulator stands in for the SDK): a skip hides a broken setup.
    if IN_CI and report.skipped and call.excinfo is not None:
        if call.excinfo.errisinstance(pytest.skip.Exception) and not getattr(item, "_pf_allow_skip", False):
            report.outcome = "failed"
            report.longrepr = f"skipped in CI, which must have every capability: {call.excinfo.value}"


@functools.cache
def _probe_root() -> str | None:
    return None if os.geteuid() == 0 else "needs root (CAP_NET_ADMIN, CAP_BPF)"


@functools.cache
def _probe_bpf() -> str | None:
    if _probe_root():
        return _probe_root()
    if not os.path.isdir("/sys/fs/bpf"):
        return "this kernel has no /sys/fs/bpf (no BPF filesystem)"
    # pyflow mounts bpffs itself when it is absent; so do the tests that call BPF_PROG_RUN directly
    if not os.path.ismount("/sys/fs/bpf"):
        r = subprocess.run(["mount", "-t", "bpf", "-o", "mode=0700", "bpf", "/sys/fs/bpf"], capture_output=True,
                           text=True)
        if r.returncode:
            return f"bpffs is not mounted at /sys/fs/bpf and mounting it failed: {r.stderr.strip()}"
    return None


@functools.cache
def _probe_netns() -> str | None:
    if _probe_root():
        return _probe_root()
    if not shutil.which("ip"):
        return "iproute2 'ip' is not installed"
    name = f"pfprobe{uuid.uuid4().hex[:6]}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode:
        return f"cannot create network namespaces: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


@functools.cache
def _probe_dpdk() -> str | None:
    if _probe_root():
        return _probe_root()
    from pyflow.native import backend_available

    ok, why = backend_available("dpdk")
    return None if ok else why


@functools.cache
def _probe_doca() -> str | None:
    # the SDK build drives the device; without the SDK the tier drives the simulator (tests/doca/conftest.py)
    from tests.doca.sim.build import sim_library

    try:
        sim_library()
    except Exception as exc:  # noqa: BLE001 - the reason is the skip message
        return f"cannot build the DOCA Flow simulator: {exc}"
    return None


# drills need what the netns tier needs (root, bpffs, namespaces); their dpdk drill probes dpdk itself
PROBES = {"bpf": _probe_bpf, "netns": _probe_netns, "dpdk": _probe_dpdk, "doca": _probe_doca, "drill": _probe_netns}


def _tiers(item) -> set[str]:
    # markers only: a parametrize id such as "doca" must not put a test in a tier
    return {m.name for m in item.iter_markers() if m.name in TIERS}


def pytest_runtest_setup(item):
    tiers = _tiers(item)
    for tier, probe in PROBES.items():
        if tier in tiers:
            reason = probe()
            if reason:
                pytest.skip(f"{tier} tier: {reason}")


@pytest.fixture
def unique_prefix():
    """A short unique name prefix for namespaces, links and pins created by one test."""
    return f"pf{uuid.uuid4().hex[:5]}"
