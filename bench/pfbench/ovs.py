"""Open vSwitch userspace datapath (datapath_type=netdev) as a peer, run privately.

ovsdb-server and ovs-vswitchd run with their own rundir/db/logs in a temp dir, inside the
DUT namespace, started and stopped by PID: the Debian service is never touched.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

from .common import CommandError, log, ns_prefix, run
from .lab import DUT_IN, DUT_OUT, SINK_IF
from .systems import System
from .traffic import rewritten_dst

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
BRIDGE = "pfbovs0"


def ensure_installed() -> str | None:
    """Install openvswitch-switch if missing; None when usable, else why not."""
    if shutil.which("ovs-vswitchd") and os.path.exists(SCHEMA):
        return None
    log("installing openvswitch-switch (apt) for the OVS userspace peer")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "openvswitch-switch"],
                          capture_output=True, text=True, env=env)
    if proc.returncode or not shutil.which("ovs-vswitchd"):
        return f"openvswitch-switch could not be installed: {proc.stderr.strip()[-200:]}"
    return None


class OvsDaemons:
    """A private ovsdb-server + ovs-vswitchd pair living in the DUT namespace."""

    def __init__(self, lab, workdir: str, cpu: int | None):
        self.lab = lab
        self.dir = os.path.join(workdir, "ovs")
        self.cpu = cpu
        self.procs: list[subprocess.Popen] = []
        self.env = dict(os.environ, OVS_RUNDIR=self.dir, OVS_DBDIR=self.dir, OVS_LOGDIR=self.dir,
                        OVS_SYSCONFDIR=self.dir, OVS_PKGDATADIR="/usr/share/openvswitch")
        self.db_sock = f"unix:{self.dir}/db.sock"

    def start(self) -> None:
        os.makedirs(self.dir, exist_ok=True)
        run(["ovsdb-tool", "create", f"{self.dir}/conf.db", SCHEMA])
        pin = ["taskset", "-c", str(self.cpu)] if self.cpu is not None else []
        self._spawn(["ovsdb-server", f"{self.dir}/conf.db", f"--remote=p{self.db_sock}",
                     f"--unixctl={self.dir}/ovsdb-server.ctl", f"--log-file={self.dir}/ovsdb-server.log",
                     "-vconsole:off"])
        self._wait_for(f"{self.dir}/db.sock")
        self.vsctl("--no-wait", "init")
        self._spawn(ns_prefix(self.lab.ns_dut) + pin + [
            "ovs-vswitchd", self.db_sock, f"--unixctl={self.dir}/ovs-vswitchd.ctl",
            f"--log-file={self.dir}/ovs-vswitchd.log", "-vconsole:off", "--no-chdir"])
        self._wait_for(f"{self.dir}/ovs-vswitchd.ctl")
        self.lab.cleanups.append(self.stop)

    def _spawn(self, cmd: list[str]) -> None:
        self.procs.append(subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           start_new_session=True))

    def _wait_for(self, path: str, timeout: float = 15) -> None:
        deadline = time.time() + timeout
        while not os.path.exists(path):
            if any(p.poll() is not None for p in self.procs):
                raise CommandError(f"OVS daemon exited early; see {self.dir}/*.log")
            if time.time() > deadline:
                raise CommandError(f"OVS: {path} did not appear")
            time.sleep(0.05)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()

    def vsctl(self, *args: str) -> str:
        return run(["ovs-vsctl", f"--db={self.db_sock}", "--timeout=20", *args], ns=self.lab.ns_dut)

    def ofctl(self, *args: str, input: str | None = None) -> str:
        return run(["env", f"OVS_RUNDIR={self.dir}", "ovs-ofctl", "-O", "OpenFlow13", *args], ns=self.lab.ns_dut, input=input)

    def appctl(self, *args: str) -> str:
        return run(["ovs-appctl", "-t", f"{self.dir}/ovs-vswitchd.ctl", *args], ns=self.lab.ns_dut)

    def pid(self) -> int | None:
        return self.procs[-1].pid if self.procs else None


class OvsUserspace(System):
    """OVS with the userspace datapath; port_type 'system' (AF_PACKET) or 'afxdp'."""

    def __init__(self, daemons_factory, port_type: str = "system"):
        self.daemons_factory = daemons_factory
        self.port_type = port_type
        self.name = "ovs-netdev" if port_type == "system" else "ovs-netdev-afxdp"
        self.label = "OVS userspace" if port_type == "system" else "OVS userspace AF_XDP"
        self.description = (f"ovs-vswitchd datapath_type=netdev, {port_type} ports, one OpenFlow rule per flow: "
                            "nw_src=S -> mod_nw_dst:S+1.1.1.1, output (the same pipeline as pyflow's learned entries)")
        self.rewrites = True
        self.cores = "2 (generator core + ovs-vswitchd on the other core)"
        self.forwards_in_generator_softirq = False
        self.daemons: OvsDaemons | None = None

    def setup(self, lab, flows):
        if self.port_type == "system":
            lab.set_gro(DUT_IN, True)
        self.daemons = self.daemons_factory()
        d = self.daemons
        d.vsctl("--may-exist", "add-br", BRIDGE, "--", "set", "bridge", BRIDGE, "datapath_type=netdev",
                "protocols=OpenFlow13", "fail_mode=secure")
        if self.port_type == "afxdp":
            d.vsctl("set", "Open_vSwitch", ".", f"other_config:pmd-cpu-mask={1 << (d.cpu or 1):#x}")
        for ofport, ifname in ((1, DUT_IN), (2, DUT_OUT)):
            extra = ["type=afxdp", "options:xdp-mode=native"] if self.port_type == "afxdp" else []
            d.vsctl("--may-exist", "add-port", BRIDGE, ifname, "--", "set", "interface", ifname,
                    f"ofport_request={ofport}", *extra)
        rules = [f"table=0,priority=100,ip,in_port=1,nw_src={src},actions=set_field:{rewritten_dst(src)}->ip_dst,output:2"
                 for src in flows]
        d.ofctl("add-flows", BRIDGE, "-", input="\n".join(rules) + "\n")
        self._wait_ports_ready()

    def _wait_ports_ready(self, timeout: float = 10) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            out = self.daemons.vsctl("--bare", "--columns=error", "find", "interface", f"name={DUT_IN}")
            if out.strip():
                raise CommandError(f"OVS port {DUT_IN}: {out.strip()}")
            ofport = self.daemons.vsctl("get", "interface", DUT_IN, "ofport").strip()
            if ofport not in ("[]", "-1"):
                return
            time.sleep(0.1)

    def teardown(self, lab):
        if self.daemons:
            try:
                self.daemons.vsctl("--if-exists", "del-br", BRIDGE)
            except CommandError as exc:
                log(f"OVS teardown: {exc}")
        super().teardown(lab)

    def dst_mac(self, lab):
        return lab.mac[SINK_IF]

    def datapath_flows(self) -> int:
        out = self.daemons.appctl("dpctl/dump-flows") if self.daemons else ""
        return sum(1 for line in out.splitlines() if "actions:" in line)
