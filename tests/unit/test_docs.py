"""The recipes in the README and docs run on the hosts this project is tested on (2 CPUs)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CI_CPUS = 2


def lcores(spec: str) -> set[int]:
    out = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out |= set(range(int(lo), int(hi or lo) + 1))
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_eal_core_lists_fit_a_two_cpu_host(doc):
    for spec in re.findall(r"(?:^|\s)-l\s+([0-9][0-9,\-]*)", doc.read_text()):
        assert max(lcores(spec)) < CI_CPUS, f"{doc.name}: -l {spec} needs more than {CI_CPUS} CPUs"
