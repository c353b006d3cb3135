"""The lab recipes in the README and docs run on the hosts this project is tested on (2 CPUs)."""
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


def lab_recipes(text: str) -> list[str]:
    """Code blocks and inline commands meant for the lab (vdevs, no hugepages); real-NIC recipes may ask more."""
    blocks = re.findall(r"```.*?```", text, re.S) + re.findall(r"`[^`\n]+`", text)
    return [b for b in blocks if "--no-huge" in b or "--vdev" in b]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_lab_eal_core_lists_fit_a_two_cpu_host(doc):
    for recipe in lab_recipes(doc.read_text()):
        for spec in re.findall(r"(?:^|\s)-l\s+([0-9][0-9,\-]*)", recipe):
            assert max(lcores(spec)) < CI_CPUS, f"{doc.name}: -l {spec} needs more than {CI_CPUS} CPUs"
