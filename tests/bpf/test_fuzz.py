"""Thousands of random, mutated and truncated frames: the datapath never
forwards a malformed one, and its counters account for every frame."""
from __future__ import annotations

import random

from scapy.all import IP, TCP, UDP, Dot1Q, Ether, IPv6, Raw, raw
from scapy.contrib.mpls import MPLS

XDP_DROP, XDP_PASS, XDP_REDIRECT = 1, 2, 4


def test_fuzz_frames(dp):
    lib = dp.lib
    rng = random.Random(1234)
    dp.pipe(1, lib.PF_PIPE_BASIC, [dp.fields(ip_proto=0xFF)], fwd_miss=(lib.PF_FWD_KERNEL, 0), root=True)
    dp.entry(1, dp.fields(ip_proto=6), fwd=(lib.PF_FWD_PORT, 1), flags=lib.PF_ACT_DEC_TTL | lib.PF_ACT_PUSH_VLAN,
             vlan_id=3)
    dp.entry(1, dp.fields(ip_proto=17), fwd=(lib.PF_FWD_PORT, 1), flags=lib.PF_ACT_PUSH_MPLS, mpls_count=2,
             mpls_labels=[1, 2])
    bases = [raw(Ether() / IP(ttl=9) / TCP() / Raw(b"a" * 30)),
             raw(Ether() / Dot1Q(vlan=4) / IP() / UDP() / Raw(b"b" * 20)),
             raw(Ether() / MPLS(label=9, s=1) / IP() / UDP()),
             raw(Ether() / IPv6() / TCP() / Raw(b"c" * 8))]
    n = {"tx": 0, "drop": 0, "pass": 0}
    total = 4000
    for i in range(total):
        base = rng.choice(bases)
        kind = i % 3
        if kind == 0:       # every strict truncation of an IP frame breaks its length fields
            cut = rng.randrange(14, len(base))
            frame = base[:cut]
        elif kind == 1:     # random bytes flipped anywhere
            frame = bytearray(base)
            for _ in range(rng.randint(1, 6)):
                frame[rng.randrange(len(frame))] = rng.randrange(256)
            frame = bytes(frame)
        else:               # pure noise
            frame = bytes(rng.randrange(256) for _ in range(rng.randint(14, 120)))
        ret, v, _ = dp.run(0, frame)
        assert ret in (XDP_DROP, XDP_PASS, XDP_REDIRECT)
        if kind == 0:
            assert (ret, v.drop_reason) == (XDP_DROP, lib.PF_DROP_MALFORMED), frame.hex()
        if v.kind == lib.PF_VERDICT_DROP and v.drop_reason == lib.PF_DROP_MALFORMED:
            assert ret == XDP_DROP
        n[{XDP_REDIRECT: "tx", XDP_DROP: "drop", XDP_PASS: "pass"}[ret]] += 1
    rx = dp.port_counters(0)
    assert rx.rx_packets == total
    assert dp.port_counters(1).tx_packets == n["tx"]
    assert sum(rx.drops[r] for r in range(lib.PF_DROP_MAX)) == n["drop"]
    assert n["tx"] > 100 and rx.drops[lib.PF_DROP_MALFORMED] >= total // 3
