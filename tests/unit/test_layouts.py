"""The kernel/user shared structs have one layout: the BTF that clang wrote into
datapath.bpf.o must give every struct the size and member offsets cffi computes."""
from __future__ import annotations

import struct

import pytest
from elftools.elf.elffile import ELFFile

SHARED = ["pf_fields", "pf_flow_key", "pf_ckey", "pf_mask_key", "pf_lpm_key", "pf_fwd", "pf_actions", "pf_entry",
          "pf_pipe", "pf_port",
          "pf_config", "pf_xdp_meta", "pf_counter", "pf_pipe_counter", "pf_port_counter", "pf_verdict",
          "pf_session_member", "pf_session", "pf_dpi_counter", "pf_trace_hop", "pf_trace"]
BTF_KIND_STRUCT = 4
# bytes that follow struct btf_type for each kind (vlen = number of members/params/values)
_TRAILER = {1: lambda v: 4, 3: lambda v: 12, 4: lambda v: 12 * v, 5: lambda v: 12 * v, 6: lambda v: 8 * v,
            13: lambda v: 8 * v, 14: lambda v: 4, 15: lambda v: 12 * v, 17: lambda v: 4, 19: lambda v: 12 * v}


def btf_structs(path: str) -> dict[str, tuple[int, dict[str, int]]]:
    """name -> (size, {member: byte offset}) for every struct in the object's .BTF section."""
    with open(path, "rb") as f:
        data = ELFFile(f).get_section_by_name(".BTF").data()
    magic, _ver, _flags, hdr_len, type_off, type_len, str_off, _str_len = struct.unpack_from("<HBBIIIII", data)
    assert magic == 0xEB9F
    types = data[hdr_len + type_off:hdr_len + type_off + type_len]
    strings = data[hdr_len + str_off:]

    def name(off: int) -> str:
        return strings[off:strings.index(b"\0", off)].decode()

    out, pos = {}, 0
    while pos < len(types):
        name_off, info, size = struct.unpack_from("<III", types, pos)
        kind, vlen, kind_flag = (info >> 24) & 0x1F, info & 0xFFFF, info >> 31
        pos += 12
        if kind == BTF_KIND_STRUCT and name(name_off):
            members = {}
            for i in range(vlen):
                m_name, _m_type, m_off = struct.unpack_from("<III", types, pos + 12 * i)
                bits = m_off & 0xFFFFFF if kind_flag else m_off
                assert bits % 8 == 0, f"bitfield in {name(name_off)}"
                members[name(m_name)] = bits // 8
            out[name(name_off)] = (size, members)
        pos += _TRAILER.get(kind, lambda v: 0)(vlen)
    return out


@pytest.fixture(scope="module")
def btf():
    from pyflow.native import bpf_object_path

    return btf_structs(bpf_object_path("datapath.bpf.o"))


@pytest.mark.parametrize("name", SHARED)
def test_struct_layout_matches_cffi(btf, name):
    from pyflow.native import ffi

    assert name in btf, f"struct {name} is not in datapath.bpf.o's BTF"
    size, members = btf[name]
    ctype = ffi.typeof(f"struct {name}")
    assert size == ffi.sizeof(ctype), f"struct {name}: BTF size {size}, cffi {ffi.sizeof(ctype)}"
    cffi_members = {field: ffi.offsetof(ctype, field) for field, _ in ctype.fields}
    assert members == cffi_members


def test_no_implicit_padding():
    """Every byte of a shared struct belongs to a named member (padding is explicit)."""
    from pyflow.native import ffi

    for name in SHARED:
        ctype = ffi.typeof(f"struct {name}")
        covered = sum(ffi.sizeof(f.type) for _, f in ctype.fields)
        assert covered == ffi.sizeof(ctype), f"struct {name} has {ffi.sizeof(ctype) - covered} padding bytes"
