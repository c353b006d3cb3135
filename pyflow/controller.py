"""Lifecycle of one running pipeline.

load -> compile (everything validated, nothing attached yet) -> open instance
-> apply -> start -> loop printing counters every --stats-interval -> stop.

A control API server (pyflow.control) runs beside the loop so `pyflow entry`
and `pyflow counters` can talk to the instance from another shell. SIGINT /
SIGTERM stop cleanly: programs detached, handles closed, pins removed. With
--keep-datapath a clean stop leaves the datapath attached and pinned, and the
next run re-adopts it (as it does after a crash), unless --fresh.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

from . import counters as counters_mod
from .control import RUN_DIR, ControlServer, socket_path
from .entries import EntryOps, _quietly
from .paths import ensure_private_dir
from .sessions import SessionOps
from .errors import BackendUnavailable, ConfigError, UsageError

log = logging.getLogger("pyflow")

BACKENDS = ("doca", "dpdk", "ebpf")


@dataclass
class RunOptions:
    backend: str
    config_path: str
    ports: dict[str, str] = field(default_factory=dict)     # --port NAME=IFNAME|DPDK_PORT
    stats_interval: float = 1.0
    duration: float | None = None
    output: str = "text"
    instance: str | None = None
    fresh: bool = False
    eal_args: list[str] = field(default_factory=list)
    run_dir: str = RUN_DIR
    detail: bool = False
    xdp_mode: str = "auto"          # --xdp-mode (ebpf)
    keep_datapath: bool = False     # --keep-datapath (ebpf): a clean stop leaves the datapath attached and pinned
    metrics: str | None = None      # --metrics ADDR:PORT


def parse_port_bindings(values: list[str] | tuple[str, ...]) -> dict[str, str]:
    """--port NAME=IFNAME|DPDK_PORT, repeated."""
    out: dict[str, str] = {}
    for v in values:
        name, sep, target = v.partition("=")
        if not sep or not name or not target:
            raise UsageError(f"--port: expected NAME=IFNAME or NAME=DPDK_PORT, got {v!r}")
        if name in out:
            raise UsageError(f"--port: port {name!r} is bound twice")
        out[name] = target
    return out


def instance_name_for(cfg, config_path: str) -> str:
    name = getattr(cfg, "name", "") or os.path.splitext(os.path.basename(config_path))[0]
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in name)[:63]


def check_backend_name(backend: str) -> None:
    if backend not in BACKENDS:
        raise UsageError(f"--backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")


def check_backend(backend: str) -> None:
    check_backend_name(backend)
    from .native import backend_available

    ok, why = backend_available(backend)
    if not ok:
        raise BackendUnavailable(why)


def resolve_bindings(cfg, overrides: dict[str, str], backend: str) -> dict[str, str]:
    """Port name -> interface / DPDK port: the config's ifname, overridden by --port."""
    from .config.errors_util import suggest

    names = [p.name for p in cfg.ports]
    for name in overrides:
        if name not in names:
            raise UsageError(f"--port {name}=...: the config has no port {name!r}{suggest(name, names)} "
                             f"(ports: {', '.join(names)})")
    bindings = {}
    for i, p in enumerate(cfg.ports):
        target = overrides.get(p.name) or p.ifname
        if not target:
            raise ConfigError(f"ports[{i}]", f"port {p.name!r} is not bound: give it an 'ifname' or pass "
                              f"--port {p.name}=IFNAME{_lab_hint(names) if backend == 'ebpf' else ''}")
        bindings[p.name] = target
    if backend == "ebpf":
        for name, ifname in bindings.items():
            if not os.path.exists(f"/sys/class/net/{ifname}"):
                raise UsageError(f"--port {name}={ifname}: no such network interface")
    return bindings


def _lab_hint(port_names: list[str]) -> str:
    """'; lab X has these ports: --port ...' when a lab that is up binds every port of the config."""
    from .lab import list_labs

    try:
        labs = [lab for lab in list_labs() if lab.get("alive") and set(port_names) <= set(lab.get("ports", {}))]
    except OSError:
        return ""
    if not labs:
        return ""
    args = " ".join(f"--port {n}={labs[0]['ports'][n]}" for n in port_names)
    return f" (lab {labs[0]['prefix']} is up with these ports: {args})"


def load_and_compile(config_path: str, backend: str, port_overrides: dict[str, str]):
    """Everything that can fail on bad input, before anything touches the system."""
    from .config import load_config

    cfg = load_config(config_path)
    bindings = resolve_bindings(cfg, port_overrides, backend)
    from .compiler import compile_program

    program = compile_program(cfg, bindings)
    return cfg, bindings, program


def counter_layout(instance: str, cfg, program) -> counters_mod.CounterLayout:
    pipe_ids = cfg.pipe_ids()
    entry_ids = program.entry_ids
    static = []
    for pipe in cfg.pipes:
        for e in pipe.entries:
            if e.name in entry_ids and (pipe.counters or e.actions.count):
                static.append((e.name, pipe.name, entry_ids[e.name]))
    policies = [(mp.name, mp.pipe, pipe_ids[mp.pipe], pipe_ids[mp.install], mp.entry_name)
                for mp in cfg.miss_policies]
    return counters_mod.CounterLayout(
        instance=instance, static_entries=static, miss_policies=policies,
        pipes=[(p.name, pipe_ids[p.name]) for p in cfg.pipes],
        ports=[(p.name, p.id) for p in cfg.ports])


# ---------------------------------------------------------------------------

class Controller(EntryOps, SessionOps):
    def __init__(self, opts: RunOptions, out=None):
        self.opts = opts
        self.out = out or sys.stdout
        self.stop_event = threading.Event()
        self.cfg = None
        self.program = None
        self.bindings: dict[str, str] = {}
        self.instance = None
        self.instance_name = opts.instance or ""
        self.layout: counters_mod.CounterLayout | None = None
        self.server: ControlServer | None = None
        self.runtime_entries: dict[str, tuple[str, int]] = {}   # name -> (pipe, id), added over the control API
        self.runtime_records: dict[str, tuple] = {}              # name -> (compiled entry, mask slot), to undo
        self.pipe_counts: dict[str, int] | None = None           # pipe -> config + runtime entries installed
        self.installed_masks: dict[int, list[bytes]] = {}        # pipe id -> mask slots programmed
        self.adopted = False
        self.started = False
        self.xdp_modes: dict[str, str] = {}                       # port name -> XDP mode it got (ebpf)

    # -- lifecycle ----------------------------------------------------------
    def prepare(self) -> None:
        check_backend(self.opts.backend)
        self.cfg, self.bindings, self.program = load_and_compile(self.opts.config_path, self.opts.backend,
                                                                 self.opts.ports)
        if not self.instance_name:
            self.instance_name = instance_name_for(self.cfg, self.opts.config_path)
        ensure_private_dir(self.opts.run_dir, "control socket directory")  # before anything is attached

    def open(self) -> None:
        from .instance import Instance

        eal = ["pyflow"] + list(self.opts.eal_args) if self.opts.backend in ("dpdk", "doca") else None
        if eal:
            from .eal import check_file_prefix

            check_file_prefix(eal[1:])   # one clear line when another primary holds the --file-prefix
        extra = {"xdp_mode": self.opts.xdp_mode} if self.opts.backend == "ebpf" else {}
        self.instance = Instance.open(self.opts.backend, self.instance_name, fresh=self.opts.fresh, eal_args=eal,
                                      keep_datapath=self.opts.keep_datapath, **extra)
        info = self.instance.info()
        self.adopted = bool(info.get("adopted"))
        if info.get("adopted"):
            log.info("Re-adopted the pinned state of instance %s", self.instance_name)
        if info.get("mode_reason"):
            log.warning("%s", info["mode_reason"])
        self.program.apply(self.instance)
        # clone sessions as the control API changes them: id -> [{port, instance, class_of_service, truncate}]
        self.sessions = {s.id: [{"port": m.port, "instance": m.instance, "class_of_service": m.class_of_service,
                                 "truncate": m.truncate} for m in s.members] for s in self.cfg.sessions}
        self.layout = counter_layout(self.instance_name, self.cfg, self.program)
        self.installed_masks = {p.id: [p.mask_bytes(i) for i in range(p.nmasks)] for p in self.program.pipes}

    def start(self) -> None:
        self.instance.start()
        self.started = True
        if self.opts.backend == "ebpf":
            modes = self.instance.info()["port_xdp_modes"]
            self.xdp_modes = {p.name: modes.get(p.id, "") for p in self.cfg.ports}
        self.server = ControlServer(socket_path(self.instance_name, self.opts.run_dir), self.handlers())
        self.server.start()
        if self.opts.metrics:
            from .metrics import serve_local

            self.metrics_server = serve_local(self, self.opts.metrics)

    def stop(self) -> None:
        if self.instance is not None and self.opts.backend == "ebpf":
            _quietly(self.instance_capture_stop)
        if getattr(self, "metrics_server", None):
            self.metrics_server.shutdown()
            self.metrics_server = None
        if self.server:
            self.server.stop()
            self.server = None
        if self.instance is not None:
            try:
                self.instance.stop()
                # A clean stop takes the datapath away unless asked to keep it. A run that failed before it
                # started leaves adopted state as it found it (a kept datapath may still be forwarding).
                if not self.opts.keep_datapath and (self.started or not self.adopted):
                    self.instance.destroy()
            finally:
                self.instance.close()
                self.instance = None

    def run(self) -> int:
        self.prepare()
        self._install_signals()
        try:
            self.open()
            self.start()
            log.info("Waiting for signal...")
            self.loop()
        finally:
            log.info("Shutting down...")
            self.stop()
        return 0

    def loop(self) -> None:
        interval = max(self.opts.stats_interval, 0.05)
        deadline = None if self.opts.duration is None else time.monotonic() + self.opts.duration
        while not self.stop_event.is_set():
            wait = interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic()))
            if self.stop_event.wait(wait):
                break
            self.print_counters()
            if deadline is not None and time.monotonic() >= deadline:
                break

    def print_counters(self) -> None:
        snap = self.snapshot()
        if self.opts.output == "json":
            line = json.dumps(counters_mod.to_json(snap), sort_keys=True)
        else:
            line = counters_mod.format_line(snap)
            if self.opts.detail:
                line += "\n" + counters_mod.format_detail(snap)
        print(line, file=self.out, flush=True)

    def snapshot(self) -> counters_mod.Snapshot:
        snap = counters_mod.collect(self.instance, self.layout)
        for port in snap.ports:
            port.xdp_mode = self.xdp_modes.get(port.name, "")
        return snap

    def _install_signals(self) -> None:
        main_pid = os.getpid()

        def on_signal(signum, _frame):
            if os.getpid() != main_pid:  # a forked helper (pyroute2 netns sockets) inherited this handler
                os._exit(128 + signum)
            # The resubmit example's wording; stdout like its counter lines so they interleave in order.
            print(f"Signal {signum} received, preparing to exit...", file=self.out, flush=True)
            self.stop_event.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

    # -- control API ----------------------------------------------------------
    def handlers(self) -> dict:
        return {
            "status": self._op_status,
            "counters": self._op_counters,
            "entry_add": self._op_entry_add,
            "entry_del": self._op_entry_del,
            "entry_list": self._op_entry_list,
            "session_create": self._op_session_create,
            "session_add_member": self._op_session_add_member,
            "session_delete_member": self._op_session_delete_member,
            "session_list": self._op_session_list,
            "trace": self._op_trace,
            "metrics": self._op_metrics,
            "capture_start": lambda args: capture_op("start", self, args),
            "capture_stats": lambda args: capture_op("stats", self, args),
            "capture_stop": lambda args: capture_op("stop", self, args),
        }

    def _op_status(self, args):
        return {"instance": self.instance_name, "backend": self.opts.backend, "config": self.opts.config_path,
                "pid": os.getpid(), "ports": self.bindings, "xdp_modes": self.xdp_modes,
                "keep_datapath": self.opts.keep_datapath}

    def _op_counters(self, args):
        from .seedcounters import seed_counters

        data = counters_mod.to_json(self.snapshot())
        data.update(seed_counters(self))
        return data

    def instance_capture_stop(self) -> None:
        from .native import call, ffi, lib

        call(lib.pf_capture_stop, self.instance.handle, ffi.new("struct pf_capture_stats *"))

    def _op_trace(self, args):
        from .trace import controller_trace

        return controller_trace(self, args)

    def _op_metrics(self, args):
        from .metrics import collect_state

        return collect_state(self)


def capture_op(op: str, ctl, args):
    from . import capture

    return getattr(capture, f"op_capture_{op}")(ctl, args)
