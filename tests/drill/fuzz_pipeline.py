"""The drill pipeline of tests/drill/frames.py programmed through the C API, and a frame runner, shared by
the ebpf test and the DPDK job (tests/drill/dpdk_fuzz_job.py)."""
from __future__ import annotations

from tests.drill import frames as model

XDP_DROP, XDP_PASS, XDP_REDIRECT = 1, 2, 4


def program(dp) -> None:
    lib, F = dp.lib, dp.fields
    port, pipe, drop, kernel = lib.PF_FWD_PORT, lib.PF_FWD_PIPE, lib.PF_FWD_DROP, lib.PF_FWD_KERNEL
    be16 = lambda v: ((v & 0xFF) << 8) | (v >> 8)  # noqa: E731  (network order in a host integer)
    masks = {1: F(eth_type=0xFFFF, vlan_id=0xFFF), 2: F(ip_proto=0xFF, l4_dport=0xFFFF), 3: F(ip_proto=0xFF),
             4: F(mpls_label=0xFFFFF), 5: F(mpegts_frame=0xFF)}
    misses = {1: (kernel, 0), 2: (drop, 0), 3: (kernel, 0), 4: (drop, 0), 5: (drop, 0)}
    for pid in (1, 2, 3, 4, 5):
        dp.pipe(pid, lib.PF_PIPE_BASIC, [masks[pid]], fwd_miss=misses[pid], root=pid == 1)
    fwds = {"pipe": lambda t: (pipe, t[1]), "drop": lambda t: (drop, 0), "kernel": lambda t: (kernel, 0),
            "port": lambda t: (port, t[1])}
    for pid, (entries, _) in model.PIPES.items():
        for key, target in entries.items():
            if pid == 1:
                match = F(eth_type=be16(key[0]), vlan_id=key[1])
            elif pid == 2:
                match = F(ip_proto=key[0], l4_dport=be16(key[1]))
            elif pid == 3:
                match = F(ip_proto=key[0])
            elif pid == 4:
                match = F(mpls_label=key[0])
            else:
                match = F(mpegts_frame=key[0])
            flags = lib.PF_ACT_DEC_TTL if target[0] == "port" and target[2] else 0
            dp.entry(pid, match, fwd=fwds[target[0]](target), flags=flags)


def runner(dp):
    ffi, lib = dp.ffi, dp.lib
    out = ffi.new("char[]", 4096)
    res = ffi.new("struct pf_test_result *")
    err = ffi.new("struct pf_error *")
    inst, test_run = dp.inst, lib.pf_test_run

    def run(frame: bytes):
        ret = test_run(inst, 0, frame, len(frame), out, 4096, res, err)
        if ret < 0:
            raise AssertionError(f"test run: {ffi.string(err.msg).decode()} on {frame.hex()}")
        v = res.verdict
        aux = v.out_port if v.kind == model.TX else v.drop_reason if v.kind == model.DROP else 0
        return res.retval, v.kind, aux, ffi.buffer(out, res.out_len)[:]

    return run


def fuzz(run, seed: int, count: int, retvals: dict | None):
    """Run count frames of Fuzzer(seed) and compare each fate (and retval, when retvals maps verdict kinds
    to the backend's native verdict) with the model. Returns the fates counted."""
    import collections

    fuzzer = model.Fuzzer(seed)
    fates = collections.Counter()
    for i in range(count):
        frame = fuzzer.frame()
        want, ttl_off = model.fate(frame)
        retval, kind, aux, out = run(frame)
        if (kind, aux) != want or (retvals and retval != retvals[want[0]]):
            raise AssertionError(f"seed {seed} frame {i}: datapath {(kind, aux)} (retval {retval}), "
                                 f"model {want}: {frame.hex()}")
        if ttl_off is not None:
            expect = model.after_dec_ttl(frame, ttl_off, model.parse(frame)["l3"])
            if out != expect:
                raise AssertionError(f"seed {seed} frame {i}: left as {out.hex()}, model {expect.hex()}")
        fates[want] += 1
    return fates


NAMES = {(model.TX, 1): "tx", (model.PASS, 0): "kernel", (model.DROP, model.MALFORMED): "malformed",
         (model.DROP, model.ACTION): "dropped", (model.DROP, model.ACTION_FAIL): "ttl-expired"}


def describe(fates) -> str:
    return ", ".join(f"{NAMES.get(k, k)}={n}" for k, n in sorted(fates.items(), key=lambda kv: -kv[1]))
