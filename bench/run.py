#!/usr/bin/env python3
"""pyflow benchmark suite.

    make bench                               # everything, 5 repetitions
    make bench BENCH_ARGS="--quick"          # a short smoke run
    make bench BENCH_ARGS="--part fastpath --repeats 7 --duration 3"

Runs on a lab of its own (namespaces and veths named pfb<tag>*, removed afterwards, also on Ctrl-C),
prints a table, writes bench/results/<timestamp>.json and PNG plots next to it.
"""
from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path[0] != HERE:
    sys.path.insert(0, HERE)

from pfbench.suite import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
