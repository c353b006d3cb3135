#!/usr/bin/env python3
"""Generate the cffi (API mode) C source of pyflow._native from the public headers.

The headers are the single source of truth: preprocessor lines are dropped,
integer #defines become cffi constants, and everything else is passed to cdef
unchanged. Run by meson at build time.
"""
import re
import sys

import cffi


def cdef_from_header(text: str) -> str:
    out = []
    skipping = False  # inside an #ifdef __bpf__ branch: BPF-only typedefs
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#ifdef __bpf__"):
            skipping = True
            continue
        if skipping:
            if stripped.startswith(("#else", "#endif")):
                skipping = False
            continue
        m = re.match(r"#define\s+(PF_\w+)\s+(\(?-?(?:0x[0-9a-fA-F]+|\d+)u?\)?)\s*$", stripped)
        if m:
            out.append(f"#define {m.group(1)} {m.group(2).strip('()').rstrip('u')}")
            continue
        if stripped.startswith("#"):
            continue
        line = re.sub(r"__attribute__\s*\(\(.*?\)\)", "", line)
        out.append(line)
    text = "\n".join(out)
    # array bounds written with macros are resolved by cffi from the #defines
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def main() -> int:
    output, api_header, shared_header = sys.argv[1:4]
    ffi = cffi.FFI()
    cdefs = cdef_from_header(open(shared_header).read()) + "\n" + cdef_from_header(open(api_header).read())
    cdefs = cdefs.replace("typedef void (*pf_log_fn)(int level, const char *msg);",
                          "typedef void (*pf_log_fn)(int level, const char *msg);\n"
                          "extern \"Python\" void _pf_python_log(int level, const char *msg);")
    ffi.cdef(cdefs)
    ffi.set_source("pyflow._native", '#include "pyflow/pyflow.h"\n')
    ffi.emit_c_code(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
