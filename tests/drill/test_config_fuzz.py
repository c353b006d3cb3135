"""Config fuzzing: broken configs are refused with one line naming the JSON path, exit code 2, and
nothing attached, pinned or left under /run.

Most configs go through the validation in-process (what `pyflow run` calls before it touches the
system: load_config then compile_program); a seeded sample goes through the real `pyflow run` on real
interfaces, to check the exit code, the one line on stderr, and that nothing was left behind.
PYFLOW_FUZZ_SEED picks another seed (the failing seed and config label are in every message).
"""
from __future__ import annotations

import collections
import json
import os
import random
import uuid

import pytest

from tests.drill.config_fuzz import generate, on_route
from tests.drill.restart_lab import xdp_prog_ids
from tests.pyflow_testing import pyflow_cli

SEED = int(os.environ.get("PYFLOW_FUZZ_SEED", "20261203"))
IN_PROCESS = 1500
THROUGH_CLI = 30


def test_broken_configs_are_refused_with_their_json_path(figures):
    from pyflow.compiler import compile_program
    from pyflow.config import load_config
    from pyflow.errors import ConfigError

    kinds = collections.Counter()
    for label, doc, path in generate(IN_PROCESS, SEED):
        with pytest.raises(ConfigError) as info:
            cfg = load_config(doc)
            compile_program(cfg, {p["name"]: "lo" for p in cfg.ports})
        exc = info.value
        msg = str(exc)
        where = f"seed {SEED} config {label} (broken at {path or 'the top level'})"
        assert exc.exit_code == 2, where
        assert "\n" not in msg and msg.strip(), f"{where}: not one line: {msg!r}"
        assert on_route(exc.path, exc.message, path), f"{where}: error names {exc.path!r}: {msg}"
        kinds[label.split(":")[2]] += 1
    assert sum(kinds.values()) == IN_PROCESS
    figures(f"{IN_PROCESS} broken configs (seed {SEED}) refused in-process, each one line naming its path: "
            + ", ".join(f"{k[2:]}={n}" for k, n in sorted(kinds.items())))


@pytest.fixture(scope="module")
def lab():
    from pyflow.lab import Lab

    with Lab("resubmit", prefix=f"pfz{uuid.uuid4().hex[:5]}") as lab:
        yield lab


def run_dir_listing() -> list[str]:
    return sorted(os.listdir("/run/pyflow")) if os.path.isdir("/run/pyflow") else []


def test_broken_configs_through_pyflow_run_leave_nothing(lab, tmp_path, figures):
    rng = random.Random(SEED)
    sample = rng.sample(generate(400, SEED + 1, only="resubmit"), THROUGH_CLI)
    run_before = run_dir_listing()
    for i, (label, doc, path) in enumerate(sample):
        name = f"{lab.prefix}z{i}"
        cfg = tmp_path / f"{i}.json"
        cfg.write_text(json.dumps(doc))
        r = pyflow_cli("run", "--backend", "ebpf", "-j", str(cfg), *lab.port_args(), "--instance", name,
                       "--stats-interval", "0.2", "--duration", "1", check=False)
        where = f"seed {SEED + 1} config {label} (broken at {path or 'the top level'})"
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2, f"{where}: exit {r.returncode}: {r.stderr}"
        assert len(lines) == 1 and lines[0].startswith("pyflow run: error: "), f"{where}: {r.stderr!r}"
        if path:
            reported = lines[0][len("pyflow run: error: "):].split(": ", 1)[0]
            assert on_route(reported, lines[0], path), f"{where}: {lines[0]}"
        assert not os.path.exists(f"/sys/fs/bpf/pyflow/{name}"), f"{where}: pinned"
        assert run_dir_listing() == run_before, f"{where}: left {run_dir_listing()}"
        assert not any(xdp_prog_ids(lab.ports.values()).values()), f"{where}: XDP attached"
    figures(f"{THROUGH_CLI} of them through `pyflow run` on real interfaces: exit 2, one line, nothing "
            f"pinned, attached or left under /run/pyflow")
