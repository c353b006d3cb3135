"""Reliability drills: every drill records the figures it measured (packets lost, learn gaps, shed
counts, fuzz counts); they are printed at the end of the run and written to build/drill-figures.txt."""
from __future__ import annotations

import os
import pathlib

import pytest

FIGURES: list[tuple[str, str]] = []
REPORT = pathlib.Path(__file__).resolve().parents[2] / "build" / "drill-figures.txt"


@pytest.fixture
def figures(request):
    """figures(text): one line of this drill's figures."""

    def record(text: str) -> None:
        FIGURES.append((request.node.nodeid.split("::", 1)[-1], text))

    return record


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    terminalreporter.section("drill figures")
    lines = [f"{test}: {text}" for test, text in FIGURES]
    for line in lines:
        terminalreporter.write_line(line)
    try:
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text("\n".join(lines) + "\n")
    except OSError:
        pass
    if os.environ.get("PYFLOW_DRILL_REPORT"):
        pathlib.Path(os.environ["PYFLOW_DRILL_REPORT"]).write_text("\n".join(lines) + "\n")
