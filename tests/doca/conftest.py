"""The doca tier drives the doca backend against the DOCA Flow simulator when the SDK is absent."""
from __future__ import annotations

import ctypes
import json

import pytest

from tests.doca.sim.build import sim_library


class Sim:
    """The simulator library as the backend loaded it (same path: the same DOCA Flow state)."""

    def __init__(self, path: str):
        self.path = path
        self.lib = ctypes.CDLL(path)
        self.lib.docasim_violations.restype = ctypes.c_uint64
        self.lib.docasim_clock_advance.argtypes = [ctypes.c_uint64]

    def dump(self) -> dict:
        buf = ctypes.create_string_buffer(1 << 22)
        n = self.lib.docasim_dump_json(buf, len(buf))
        assert n >= 0, "simulator dump did not fit"
        return json.loads(buf.value.decode())

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock (which ages entries) on, without sleeping."""
        self.lib.docasim_clock_advance(int(seconds * 1e9))

    def queue_stats(self) -> tuple[int, int]:
        """(entry adds that pushed their queue, doca_flow_entries_process calls) so far."""
        pushes, calls = ctypes.c_uint64(), ctypes.c_uint64()
        self.lib.docasim_queue_stats(ctypes.byref(pushes), ctypes.byref(calls))
        return pushes.value, calls.value

    def violations(self) -> int:
        return self.lib.docasim_violations()


@pytest.fixture
def sim(monkeypatch) -> Sim:
    path = sim_library()
    monkeypatch.setenv("PYFLOW_DOCA_SIM", path)
    s = Sim(path)
    before = s.violations()
    yield s
    # every test leaves DOCA Flow torn down in the documented order
    d = s.dump()
    assert d["pipes"] == [] and d["ports"] == [] and not d["initialised"], d
    assert s.violations() == before
