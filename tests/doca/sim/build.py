"""Build the DOCA Flow simulator (docasim.c) into a shared library the tests and the bench load.

Test code: never part of the package. The library is rebuilt when its sources change.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SOURCES = [HERE / "docasim.c", ROOT / "native/src/doca/doca_flow_decl.h", ROOT / "native/src/doca/doca_fields.h",
           ROOT / "native/src/doca/doca_io.h", ROOT / "native/src/doca/doca_flow_api.h"]


def sim_library() -> str:
    """Path of libdocasim.so, built for the current sources."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in SOURCES)).hexdigest()[:16]
    out_dir = pathlib.Path(os.environ.get("PYFLOW_DOCA_SIM_DIR", tempfile.gettempdir())) / f"pyflow-docasim-{digest}"
    lib = out_dir / "libdocasim.so"
    if lib.exists():
        return str(lib)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f"libdocasim.so.{os.getpid()}"
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O2", "-g", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-Werror", "-fPIC", "-shared",
                    "-fvisibility=hidden", f"-I{ROOT / 'native/src'}", f"-I{ROOT / 'native/src/doca'}",
                    str(HERE / "docasim.c"), "-o", str(tmp), "-lpthread"], check=True, capture_output=True, text=True)
    os.replace(tmp, lib)
    return str(lib)


if __name__ == "__main__":
    print(sim_library())
