"""The benchmark's own lab: three namespaces joined by two veth pairs.

    [gen ns] pfbg0 <--veth--> pfbd0 [dut ns] pfbd1 <--veth--> pfbs0 [sink ns]

The generator transmits on pfbg0; the system under test forwards pfbd0 -> pfbd1;
an XDP sink on pfbs0 counts. Everything is named pfb<tag>* and removed on exit,
on error and on Ctrl-C / SIGTERM.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal

from .common import CommandError, log, run, set_sysctl

PIN_ROOT = "/sys/fs/bpf/pyflow"
GEN_IF, DUT_IN, DUT_OUT, SINK_IF = "pfbg0", "pfbd0", "pfbd1", "pfbs0"
GEN_ADDR, DUT_IN_ADDR = "10.99.0.1", "10.99.0.2"
DUT_OUT_ADDR, SINK_ADDR = "10.99.1.1", "10.99.1.2"


class Lab:
    def __init__(self, tools):
        self.tools = tools
        self.tag = secrets.token_hex(2)
        self.ns_gen = f"pfb{self.tag}g"
        self.ns_dut = f"pfb{self.tag}d"
        self.ns_sink = f"pfb{self.tag}s"
        self.sink_pin = f"{PIN_ROOT}/pfb{self.tag}sink"
        self.dut_pin = f"{PIN_ROOT}/pfb{self.tag}dut"
        self.created_ns: list[str] = []
        self.cleanups: list = []   # callables run LIFO before the namespaces go
        self.mac: dict[str, str] = {}
        self._old_sigterm = None

    # lifecycle -----------------------------------------------------------
    def __enter__(self):
        self._old_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @staticmethod
    def _on_sigterm(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    def _create(self) -> None:
        for ns in (self.ns_gen, self.ns_dut, self.ns_sink):
            run(["ip", "netns", "add", ns])
            self.created_ns.append(ns)
            run(["ip", "link", "set", "lo", "up"], ns=ns)
        run(["ip", "link", "add", GEN_IF, "netns", self.ns_gen, "type", "veth", "peer", "name", DUT_IN, "netns", self.ns_dut])
        run(["ip", "link", "add", DUT_OUT, "netns", self.ns_dut, "type", "veth", "peer", "name", SINK_IF, "netns", self.ns_sink])
        for ns, ifname, addr in ((self.ns_gen, GEN_IF, GEN_ADDR), (self.ns_dut, DUT_IN, DUT_IN_ADDR),
                                 (self.ns_dut, DUT_OUT, DUT_OUT_ADDR), (self.ns_sink, SINK_IF, SINK_ADDR)):
            run(["ip", "addr", "add", f"{addr}/24", "dev", ifname], ns=ns)
            run(["ip", "link", "set", ifname, "up"], ns=ns)
            self.mac[ifname] = link_info(ns, ifname)["address"]
        # No IPv6 chatter (router solicitations, MLD) from the DUT into the sink's counts.
        set_sysctl("net.ipv6.conf.all.disable_ipv6", "1", ns=self.ns_dut)
        self.attach_xdp(self.ns_sink, SINK_IF, self.tools.sink_obj, "pfb_sink", self.sink_pin)

    def close(self) -> None:
        while self.cleanups:
            fn = self.cleanups.pop()
            try:
                fn()
            except Exception as exc:  # keep tearing down whatever is left
                log(f"cleanup: {exc}")
        for ns in reversed(self.created_ns):
            run(["ip", "netns", "del", ns], check=False)
        self.created_ns.clear()
        for pin in (self.sink_pin, self.dut_pin):
            shutil.rmtree(pin, ignore_errors=True)
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None

    # helpers -------------------------------------------------------------
    def attach_xdp(self, ns: str, ifname: str, obj: str, prog: str, pin_dir: str, *devmaps: str) -> None:
        run([self.tools.pfbtool, "attach", ifname, obj, prog, pin_dir, *devmaps], ns=ns)

    def detach_xdp(self, ns: str, ifname: str) -> None:
        run([self.tools.pfbtool, "detach", ifname], ns=ns, check=False)

    def ifindex(self, ns: str, ifname: str) -> int:
        return int(link_info(ns, ifname)["ifindex"])

    def set_gro(self, ifname: str, on: bool) -> None:
        """XDP frames redirected into a veth need NAPI on the peer: an XDP program or GRO."""
        run(["ethtool", "-K", ifname, "gro", "on" if on else "off"], ns=self.ns_dut)

    def reset_dut(self) -> None:
        """Back to a bare DUT namespace between systems."""
        for ifname in (DUT_IN, DUT_OUT):
            self.detach_xdp(self.ns_dut, ifname)
            self.set_gro(ifname, False)
            run(["ip", "link", "set", ifname, "nomaster"], ns=self.ns_dut, check=False)
        set_sysctl("net.ipv4.ip_forward", "0", ns=self.ns_dut)
        shutil.rmtree(self.dut_pin, ignore_errors=True)


def link_info(ns: str, ifname: str) -> dict:
    return json.loads(run(["ip", "-j", "link", "show", "dev", ifname], ns=ns))[0]


def leftover_namespaces() -> list[str]:
    try:
        out = run(["ip", "netns", "list"], check=False)
    except CommandError:
        return []
    return [line.split()[0] for line in out.splitlines() if line.startswith("pfb")]


def pin_dirs() -> list[str]:
    return [os.path.join(PIN_ROOT, d) for d in os.listdir(PIN_ROOT) if d.startswith("pfb")] if os.path.isdir(PIN_ROOT) else []
