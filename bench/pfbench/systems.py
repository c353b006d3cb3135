"""Systems under test for the fast path. Each one forwards pfbd0 -> pfbd1 inside the DUT namespace.

Every system sees the same generator, frames, flows and sink; the only per-system difference in the
traffic is the destination MAC each one needs to forward at all (a router wants its own MAC, a bridge
the far end's).
"""
from __future__ import annotations

import os
import shutil
import tempfile

from .common import run, set_sysctl
from .lab import DUT_IN, DUT_OUT, SINK_ADDR, SINK_IF
from .traffic import FLOW_DST


class System:
    name = "?"
    label = "?"
    description = ""
    rewrites = False        # applies the resubmit example's set ipv4.dst action
    cores = "1 (shared with the generator)"
    # True when every frame is forwarded in the softirq of the generator's BPF_PROG_RUN call (XDP and the
    # kernel's own paths on the generator's CPU); False for a forwarder that runs on another core
    forwards_in_generator_softirq = True

    def unavailable(self) -> str | None:
        """None when it can run here, else why not (printed as 'skipped: <why>')."""
        return None

    def setup(self, lab, flows: list[str]) -> None:
        raise NotImplementedError

    def teardown(self, lab) -> None:
        lab.reset_dut()

    def dst_mac(self, lab) -> str:
        return lab.mac[DUT_IN]

    def prog_ids(self, lab) -> list[int]:
        """BPF programs on the forwarding path, for run-time / instruction counts."""
        return []


def xdp_prog_ids(lab, ifname: str) -> list[int]:
    import json
    info = json.loads(run(["ip", "-j", "-d", "link", "show", "dev", ifname], ns=lab.ns_dut))[0]
    xdp = info.get("xdp") or {}
    ids = [p["prog"]["id"] for p in xdp.get("attached", []) if "prog" in p]
    if not ids and "prog" in xdp:
        ids = [xdp["prog"]["id"]]
    return ids


def redirect_min_object(workdir: str) -> str:
    """The shipped ceiling object; built from the repo source when the installed package lacks it."""
    try:
        from pyflow.native import bpf_object_path
        path = bpf_object_path("xdp_redirect_min.bpf.o")
        if os.path.exists(path):
            return path
    except Exception:
        pass
    src = os.path.join(os.path.dirname(__file__), "..", "..", "bpf", "xdp_redirect_min.bpf.c")
    out = os.path.join(workdir, "xdp_redirect_min.bpf.o")
    if not os.path.exists(out):
        from .build import CLANG_ARGS
        run(["clang", *CLANG_ARGS, "-c", src, "-o", out])
    return out


class RedirectCeiling(System):
    name = "xdp-redirect-min"
    label = "XDP redirect (ceiling)"
    description = "xdp_redirect_min.bpf.o: every frame to a DEVMAP slot, no parsing — the most any XDP forwarder can do"

    def __init__(self, workdir: str):
        self.workdir = workdir

    def setup(self, lab, flows):
        lab.attach_xdp(lab.ns_dut, DUT_IN, redirect_min_object(self.workdir), "xdp_redirect_min", lab.dut_pin,
                       f"tx_port=0:{DUT_OUT}")

    def prog_ids(self, lab):
        return xdp_prog_ids(lab, DUT_IN)


class LinuxForwarding(System):
    name = "linux-ipfwd"
    label = "Linux IP forwarding"
    description = "kernel router: ip_forward=1, a /32 route and a static neighbour toward the sink"

    def setup(self, lab, flows):
        lab.set_gro(DUT_IN, True)
        set_sysctl("net.ipv4.ip_forward", "1", ns=lab.ns_dut)
        for dev in ("all", "default", DUT_IN, DUT_OUT):
            set_sysctl(f"net.ipv4.conf.{dev}.rp_filter", "0", ns=lab.ns_dut)
        run(["ip", "neigh", "replace", SINK_ADDR, "lladdr", lab.mac[SINK_IF], "dev", DUT_OUT, "nud", "permanent"], ns=lab.ns_dut)
        run(["ip", "route", "replace", f"{FLOW_DST}/32", "via", SINK_ADDR, "dev", DUT_OUT], ns=lab.ns_dut)

    def teardown(self, lab):
        run(["ip", "route", "del", f"{FLOW_DST}/32"], ns=lab.ns_dut, check=False)
        super().teardown(lab)


class LinuxBridge(System):
    name = "linux-bridge"
    label = "Linux bridge"
    description = "kernel bridge with both ports and a static FDB entry for the sink's MAC"
    bridge = "pfbbr0"

    def setup(self, lab, flows):
        lab.set_gro(DUT_IN, True)
        run(["ip", "link", "add", self.bridge, "type", "bridge", "stp_state", "0"], ns=lab.ns_dut)
        for port in (DUT_IN, DUT_OUT):
            run(["ip", "link", "set", port, "master", self.bridge], ns=lab.ns_dut)
        run(["ip", "link", "set", self.bridge, "up"], ns=lab.ns_dut)
        run(["bridge", "fdb", "replace", lab.mac[SINK_IF], "dev", DUT_OUT, "master", "static"], ns=lab.ns_dut)

    def teardown(self, lab):
        run(["ip", "link", "del", self.bridge], ns=lab.ns_dut, check=False)
        super().teardown(lab)

    def dst_mac(self, lab):
        return lab.mac[SINK_IF]
