"""pyflow benchmark suite: peers, generator, sink and reports (run with bench/run.py)."""
