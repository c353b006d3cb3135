"""The compiled core and the Python package must come from the same build."""
from __future__ import annotations

import subprocess
import sys

import pyflow
from pyflow.native import ffi, lib


def test_core_version_is_the_package_version():
    assert ffi.string(lib.pf_version()).decode() == pyflow.__version__


def test_stale_core_fails_loudly_at_import():
    # A package whose version differs from the compiled core's, as after a partial rebuild.
    code = ("import pyflow._version as v; v.__version__ = '0.0.0-other'; import pyflow; "
            "pyflow.__version__ = v.__version__; import pyflow.native")
    r = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "stale build" in r.stderr and "0.0.0-other" in r.stderr and "make install" in r.stderr
