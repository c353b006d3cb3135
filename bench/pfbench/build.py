"""Build the generator/sink BPF objects and pfbtool into a temporary directory at bench time."""
from __future__ import annotations

import os
import shutil

from .common import run

HERE = os.path.dirname(os.path.abspath(__file__))
BPF_SOURCES = ("pfb_gen", "pfb_sink")
CLANG_ARGS = ["-O2", "-g", "-target", "bpf", "-mcpu=v3", "-D__TARGET_ARCH_x86", "-I/usr/include/x86_64-linux-gnu"]


class Tools:
    def __init__(self, workdir: str):
        self.dir = os.path.join(workdir, "tools")
        os.makedirs(self.dir, exist_ok=True)
        self.pfbtool = os.path.join(self.dir, "pfbtool")
        self.gen_obj = os.path.join(self.dir, "pfb_gen.bpf.o")
        self.sink_obj = os.path.join(self.dir, "pfb_sink.bpf.o")

    def build(self) -> None:
        for tool in ("clang", "gcc"):
            if not shutil.which(tool):
                raise RuntimeError(f"{tool} is not installed (make install provides it)")
        bpf_dir = os.path.join(HERE, "bpf")
        for name in BPF_SOURCES:
            run(["clang", *CLANG_ARGS, "-I", bpf_dir, "-c", os.path.join(bpf_dir, f"{name}.bpf.c"),
                 "-o", os.path.join(self.dir, f"{name}.bpf.o")])
        run(["gcc", "-O2", "-Wall", "-o", self.pfbtool, os.path.join(HERE, "native", "pfbtool.c"), "-lbpf"])
