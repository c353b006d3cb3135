"""Seed 003's DPI stage on the shipped ebpf-cast config, through the real XDP
program (BPF_PROG_RUN): MPEG-TS PSI (PAT/PMT) datagrams always pass, whatever
percentage of non-reference frames is dropped, and every class is counted."""
from __future__ import annotations

import json
import os

import pytest
from scapy.all import IP, UDP, Ether, Raw, raw

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF = os.path.join(ROOT, "conf", "ebpf-cast.json")
XDP_DROP, XDP_REDIRECT = 1, 4


def ts(pid: int, pusi: bool, payload: bytes, adaptation: bytes | None = None) -> bytes:
    """One 188-byte TS packet."""
    afc = 0x30 if adaptation is not None else 0x10
    head = bytes([0x47, (0x40 if pusi else 0) | (pid >> 8), pid & 0xFF, afc])
    if adaptation is not None:
        head += bytes([len(adaptation)]) + adaptation
    body = head + payload
    return body + b"\xff" * (188 - len(body))


def pat() -> bytes:
    # pointer_field 0, table_id 0x00, program 1 -> PMT PID 0x1000
    return ts(0x0000, True, bytes([0x00, 0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01, 0xF0, 0x00]))


def pmt(pointer: int = 0) -> bytes:
    # pointer_field, (stuffing), table_id 0x02 on PID 0x1000
    return ts(0x1000, True, bytes([pointer]) + b"\xff" * pointer + bytes([0x02, 0xB0, 0x12, 0x00, 0x01, 0xC1]))


def video(pusi: bool = False) -> bytes:
    # a PES start (00 00 01 e0) or a continuation, PID 0x100, no random_access_indicator
    return ts(0x0100, pusi, (b"\x00\x00\x01\xe0" if pusi else b"") + bytes(20))


def keyframe() -> bytes:
    return ts(0x0100, True, b"\x00\x00\x01\xe0" + bytes(20), adaptation=bytes([0x40]))


def udp(payload: bytes) -> bytes:
    return raw(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2") /
               UDP(sport=4000, dport=1234) / Raw(payload))


@pytest.fixture
def cast(veth_ns):
    """conf/ebpf-cast.json with the non-reference drop at 100%, on the namespace's four veths."""
    from pyflow.compiler import compile_program
    from pyflow.config.loader import load_config
    from pyflow.instance import Instance

    with open(CONF) as f:
        data = json.load(f)
    video_pipe = next(p for p in data["pipes"] if p["name"] == "video")
    thin = next(e for e in video_pipe["entries"] if e["name"] == "video_nonref_thin")
    thin["actions"]["drop_pct"]["percent"] = 100
    program = compile_program(load_config(data), {"uplink": veth_ns["a"], "vm1": veth_ns["b"],
                                                  "vm2": veth_ns["c"], "vm3": veth_ns["d"]})
    inst = Instance.open("ebpf", veth_ns["ns"], no_pin=True, fresh=True)
    program.apply(inst)
    yield inst, program
    inst.close()


PSI_DATAGRAMS = {
    "pat": pat() + video() * 6,
    "pmt": pmt() + video() * 6,
    "pmt_pointer_field": pmt(pointer=5),
    "pat_pmt_then_video": pat() + pmt() + video(True) + video() * 4,
    "video_then_pmt": video() * 3 + pmt(),
}


@pytest.mark.parametrize("name", PSI_DATAGRAMS)
def test_psi_datagrams_always_pass_the_non_reference_drop(cast, name):
    """PAT / PMT datagrams are not non-reference video: with 100% of non-reference
    frames dropped they still leave to the fan-out session, every time."""
    from pyflow.native import lib

    inst, _ = cast
    frame = udp(PSI_DATAGRAMS[name])
    for _ in range(20):
        v, _out = inst.test_run(0, frame)
        assert v.kind == lib.PF_VERDICT_REPLICATE, f"{name}: PSI datagram dropped (verdict {v.kind}, " \
                                                   f"drop reason {v.drop_reason})"


def test_video_classes_still_thinned_and_every_class_counted(cast):
    """Non-reference video is still dropped (100% here), reference passes, and the
    DPI counters say how many frames of each class were seen and dropped."""
    from pyflow.native import lib

    inst, _ = cast
    before = inst.counters_dpi()
    frames = [(udp(video(True) + video() * 6), "non_reference", lib.PF_VERDICT_DROP)] * 5 + \
             [(udp(keyframe() + video() * 6), "reference", lib.PF_VERDICT_REPLICATE)] * 3 + \
             [(udp(pat() + pmt()), "psi", lib.PF_VERDICT_REPLICATE)] * 4
    for frame, cls, kind in frames:
        v, _ = inst.test_run(0, frame)
        assert v.kind == kind, cls
    after = inst.counters_dpi()
    delta = {k: {c: after[k][c] - before[k][c] for c in after[k]} for k in after}
    assert delta["frames"] == {"none": 0, "reference": 3, "non_reference": 5, "psi": 4}
    assert delta["dropped"] == {"none": 0, "reference": 0, "non_reference": 5, "psi": 0}
