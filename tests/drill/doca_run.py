"""`pyflow run` on the DOCA Flow simulator, with the simulator's state written to a file as the process exits.

usage: doca_run.py DUMP LIB PYTHON -P -m pyflow run ARGS...   (the tail is what PyflowRun runs)

LIB is the simulator library that --doca-sim names: loaded here first, the backend's dlopen of the same path
gets this very copy, so the dump is the state the backend left behind (pipes, ports, initialised, and the
violations of DOCA Flow's documented teardown order). A killed process writes nothing.
"""
import atexit
import ctypes
import runpy
import sys

dump, lib, tail = sys.argv[1], sys.argv[2], sys.argv[3:]
sim = ctypes.CDLL(lib)


def write_state() -> None:
    buf = ctypes.create_string_buffer(1 << 20)
    n = sim.docasim_dump_json(buf, len(buf))
    with open(dump, "w") as f:
        f.write(buf.value.decode() if n >= 0 else '{"error": "dump did not fit"}')


atexit.register(write_state)
sys.argv = ["pyflow", *tail[tail.index("run"):]]
runpy.run_module("pyflow", run_name="__main__", alter_sys=True)
