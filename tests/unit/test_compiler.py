"""compile_program: the C structs each config entry becomes, checked byte for byte."""
from __future__ import annotations

import ipaddress
import pathlib
import sys

import pytest

from pyflow._native import ffi, lib
from pyflow.compiler import compile_program, fields_struct, struct_bytes
from pyflow.config import load_config
from pyflow.errors import ConfigError

CONF = pathlib.Path(__file__).resolve().parents[2] / "conf"


def field_bytes(blob: bytes, attr: str, size: int, ctype="struct pf_fields") -> bytes:
    off = ffi.offsetof(ctype, attr)
    return blob[off:off + size]


@pytest.fixture(scope="module")
def resubmit():
    return compile_program(load_config(CONF / "resubmit.json"), {"uplink": "pfc-up", "vf0": "pfc-vf0"})


def test_resubmit_ids_and_ports(resubmit):
    assert [(p.id, p.name) for p in resubmit.pipes] == [(0, "root"), (1, "n2h"), (2, "h2n")]
    assert resubmit.root_pipe == 0
    assert [(p.id, p.name, p.binding) for p in resubmit.ports] == [(0, "uplink", "pfc-up"), (1, "vf0", "pfc-vf0")]
    assert all(p.value.flags == lib.PF_PORT_IN_USE for p in resubmit.ports)


def test_resubmit_root_pipe(resubmit):
    root = resubmit.pipe("root")
    v = root.value
    assert (v.type, v.domain, v.nmasks) == (lib.PF_PIPE_CONTROL, lib.PF_DOMAIN_INGRESS, 1)
    assert v.flags == lib.PF_PIPE_IN_USE | lib.PF_PIPE_COUNTED | lib.PF_PIPE_ROOT
    assert (v.fwd_miss.type, v.fwd.type) == (lib.PF_FWD_DROP, lib.PF_FWD_DROP)
    mask = root.mask_bytes(0)
    assert field_bytes(mask, "port", 4) == b"\xff\xff\xff\xff"
    assert mask.count(0) == len(mask) - 4


def test_resubmit_root_entries_bytes(resubmit):
    e = resubmit.entry("root_host_to_net_vf0")
    blob = e.match_bytes
    # meta.port is host order: port 1 is 01 00 00 00 on this little-endian host
    assert field_bytes(blob, "port", 4) == (1).to_bytes(4, sys.byteorder)
    assert blob.count(0) == len(blob) - 1
    assert (e.pipe_id, e.mask_idx, e.prefixlen) == (0, 0, 0)
    ent = e.entry
    assert (ent.fwd.type, ent.fwd.target) == (lib.PF_FWD_PIPE, 2)
    assert ent.flags == lib.PF_ENTRY_COUNTED and ent.act.flags == 0
    assert ent.priority == 1
    first = resubmit.entry("root_net_to_host")
    assert field_bytes(first.match_bytes, "port", 4) == b"\0\0\0\0"
    assert (first.entry.fwd.type, first.entry.fwd.target, first.entry.priority) == (lib.PF_FWD_PIPE, 1, 0)


def test_resubmit_n2h_and_h2n(resubmit):
    n2h = resubmit.pipe("n2h").value
    assert (n2h.fwd.type, n2h.fwd.target) == (lib.PF_FWD_PORT, 1)
    e = resubmit.entry("n2h_to_vf0")
    assert e.entry.fwd.type == lib.PF_FWD_DEFAULT
    h2n = resubmit.pipe("h2n")
    v = h2n.value
    assert (v.type, v.domain, v.fwd.type, v.fwd.target, v.fwd_miss.type) == (
        lib.PF_PIPE_BASIC, lib.PF_DOMAIN_EGRESS, lib.PF_FWD_PORT, 0, lib.PF_FWD_MISS)
    assert field_bytes(h2n.mask_bytes(0), "ipv4_src", 4) == b"\xff" * 4
    assert not [e for e in resubmit.entries if e.pipe_name == "h2n"]


def test_resubmit_learn_policy(resubmit):
    (lp,) = resubmit.learns
    v = lp.value
    assert (v.from_pipe, v.to_pipe, v.max_flows, v.nsets) == (2, 2, 256, 1)
    assert v.entry_flags == lib.PF_ENTRY_LEARNED | lib.PF_ENTRY_COUNTED
    assert v.fwd.type == lib.PF_FWD_DEFAULT and v.base_actions.flags == 0
    s = v.sets[0]
    assert (s.action, s.op, s.src_field) == (lib.PF_ACT_SET_IPV4_DST, lib.PF_EXPR_FIELD_ADD, lib.PF_FIELD_IPV4_SRC)
    assert bytes(ffi.buffer(s.value))[:4] == bytes([1, 1, 1, 1]) and not any(bytes(ffi.buffer(s.value))[4:])


def test_learned_entry_name(resubmit):
    match = fields_struct({"ipv4.src": int(ipaddress.IPv4Address("192.168.99.101"))})
    assert resubmit.learned_entry_name(2, match) == "192.168.99.101-flow"
    assert resubmit.learned_entry_name(2, struct_bytes(match)) == "192.168.99.101-flow"
    assert resubmit.learned_entry_name(0, match) is None
    names = resubmit.names()
    assert names["pipes"] == {0: "root", 1: "n2h", 2: "h2n"}
    assert names["learned"]["h2n"]["template"] == "{ipv4.src}-flow"


def test_ipv4_network_order_and_actions():
    prog = compile_program(load_config(CONF / "static-forward.json"))
    e = prog.entry("h1_to_h2")
    assert field_bytes(e.match_bytes, "ipv4_dst", 4) == bytes([10, 0, 0, 2])
    assert field_bytes(e.match_bytes, "port", 4) == (1).to_bytes(4, sys.byteorder)
    act = e.entry.act
    assert act.flags == lib.PF_ACT_SET_ETH_SRC | lib.PF_ACT_DEC_TTL
    assert bytes(act.eth_src) == bytes.fromhex("0200000000fe")
    assert (e.entry.fwd.type, e.entry.fwd.target) == (lib.PF_FWD_PORT, 2)
    nat = prog.entry("h2_nat_to_h3").entry.act
    assert nat.flags == lib.PF_ACT_SET_IPV4_DST
    assert field_bytes(struct_bytes(nat), "ipv4_dst", 4, "struct pf_actions") == bytes([10, 0, 0, 3])
    push = prog.entry("h1_to_h3_mpls").entry.act
    assert (push.flags, push.mpls_count, push.mpls_labels[0], push.mpls_ttl) == (lib.PF_ACT_PUSH_MPLS, 1, 100, 64)
    pop = prog.entry("h3_pop_200")
    assert field_bytes(pop.match_bytes, "mpls_label", 4) == (200).to_bytes(4, sys.byteorder)
    assert (pop.entry.act.flags, pop.entry.act.mpls_pop_count) == (lib.PF_ACT_POP_MPLS, 1)
    assert prog.entry("h1_drop_66").entry.fwd.type == lib.PF_FWD_DROP
    cls = prog.entry("classify_mpls")
    assert field_bytes(cls.match_bytes, "eth_type", 2) == b"\x88\x47"


def test_control_pipe_mask_slots():
    prog = compile_program(load_config(CONF / "broadcast.json"))
    flood = prog.pipe("flood")
    assert flood.value.nmasks == 2
    assert field_bytes(flood.mask_bytes(0), "eth_dst", 6) == b"\xff" * 6
    assert field_bytes(flood.mask_bytes(1), "eth_dst", 6) == b"\x01" + b"\0" * 5
    assert [prog.entry(n).mask_idx for n in ("bcast_from_p1", "mcast_from_p3")] == [0, 1]
    group = prog.entry("bcast_from_p2").entry.fwd
    assert (group.type, group.target) == (lib.PF_FWD_SESSION, 2)
    s = next(s for s in prog.sessions if s.id == 2).value
    assert s.nmembers == 2 and [s.members[i].port for i in range(2)] == [1, 3] and s.members[0].in_use == 1


def test_lpm_and_weighted_hash():
    prog = compile_program(load_config(CONF / "mpls-encap.json"))
    lpm = prog.pipe("dst_lpm").value
    assert (lpm.type, lpm.lpm_field) == (lib.PF_PIPE_LPM, lib.PF_LPM_IPV4_DST)
    e = prog.entry("lpm_10")
    assert (e.prefixlen, field_bytes(e.match_bytes, "ipv4_dst", 4)) == (8, bytes([10, 0, 0, 0]))
    assert prog.entry("lpm_10_3_3_3").prefixlen == 32
    wcmp = prog.pipe("wcmp")
    assert (wcmp.value.type, wcmp.value.nbuckets, wcmp.value.hash_slot) == (lib.PF_PIPE_HASH, 10, 0)
    assert field_bytes(wcmp.mask_bytes(0), "l4_dport", 2) == b"\xff\xff"
    w70, w30 = prog.entry("path_r3_w70"), prog.entry("path_r7_r3_w30")
    assert (w70.mask_idx, w70.prefixlen, w30.mask_idx, w30.prefixlen) == (0, 7, 7, 3)
    assert [w30.entry.act.mpls_labels[i] for i in range(w30.entry.act.mpls_count)] == [201007, 201003]
    override = prog.entry("override_10_9")
    assert field_bytes(prog.pipe("source_override").mask_bytes(override.mask_idx), "ipv4_src", 4) == b"\xff\xff\0\0"


def test_clone_and_egress_pipe():
    prog = compile_program(load_config(CONF / "psa-clone-e2e.json"))
    m4 = next(p for p in prog.ports if p.name == "m4").value
    assert m4.flags == lib.PF_PORT_IN_USE | lib.PF_PORT_EGRESS_PIPE and m4.egress_pipe == 1
    act = prog.entry("from_m1").entry.act
    assert (act.flags, act.session) == (lib.PF_ACT_CLONE, 1)
    e2e = prog.entry("egress_e2e_copy")
    assert field_bytes(e2e.match_bytes, "packet_path", 1) == bytes([lib.PF_PATH_CLONE_E2E])


def test_drop_pct_frame_class():
    prog = compile_program(load_config(CONF / "ebpf-cast.json"))
    e = prog.entry("video_nonref_thin")
    assert field_bytes(e.match_bytes, "mpegts_frame", 1) == bytes([lib.PF_MPEGTS_NON_REFERENCE])
    assert (e.entry.act.flags, e.entry.act.drop_pct) == (lib.PF_ACT_DROP_PCT, 30)


def test_unknown_binding_is_a_config_error():
    cfg = load_config(CONF / "resubmit.json")
    with pytest.raises(ConfigError) as info:
        compile_program(cfg, {"uplnk": "eth0"})
    assert info.value.path == "--port uplnk" and "did you mean 'uplink'" in info.value.message


class _Untouchable:
    backend = "ebpf"

    def __getattr__(self, name):
        raise AssertionError(f"apply touched the instance ({name}) before validating")


def test_apply_validates_bindings_first():
    prog = compile_program(load_config(CONF / "resubmit.json"), {"uplink": "pfc-up"})
    with pytest.raises(ConfigError) as info:
        prog.apply(_Untouchable())
    assert info.value.path == "ports[1]" and "--port vf0=IFNAME" in info.value.message
