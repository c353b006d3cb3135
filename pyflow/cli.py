"""The pyflow command line.

Conventions (bpftool, nikss-ctl, DPDK apps): data on stdout, errors and logs on
stderr, `-o json` output with stable keys, exit 0 on success, 2 for a bad
config or flag (one line naming the JSON path or the flag), 3 for a backend
this build or host cannot provide, 1 for anything else. In `pyflow run`,
everything after `--` is handed to the DPDK EAL unchanged.
"""
from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import sys
import time

import click

from . import __version__
from .errors import PyflowError, UsageError

LOG_LEVELS = {"disable": 10, "critical": 20, "error": 30, "warning": 40, "info": 50, "debug": 60, "trace": 70}
LOG_ALIASES = {"warn": "warning", "crit": "critical", "err": "error", "none": "disable", "off": "disable"}
LEVEL_TAGS = {logging.CRITICAL: "CRT", logging.ERROR: "ERR", logging.WARNING: "WRN", logging.INFO: "INF",
              logging.DEBUG: "DBG", 5: "TRC"}
DEFAULT_LOG_LEVEL = "info"
DEFAULT_SDK_LOG_LEVEL = "warning"
# DOCA numeric levels -> DPDK RTE_LOG levels (1 emerg .. 8 debug), for --sdk-log-level on the EAL.
DOCA_TO_RTE = {10: 1, 20: 3, 30: 4, 40: 5, 50: 7, 60: 8, 70: 8}


def parse_log_level(value: str | int, flag: str = "--log-level") -> int:
    """A DOCA numeric level (10 disable .. 70 trace) from a name or a number."""
    text = str(value).strip().lower()
    text = LOG_ALIASES.get(text, text)
    if text in LOG_LEVELS:
        return LOG_LEVELS[text]
    if text.isdigit() and int(text) in LOG_LEVELS.values():
        return int(text)
    raise UsageError(f"{flag}: expected one of {', '.join(LOG_LEVELS)} or 10, 20, ... 70, got {value!r}")


class DocaStyleFormatter(logging.Formatter):
    """[HH:MM:SS:usec][pid][PYFLOW][INF][file:line][function] message, as DOCA applications log."""

    def format(self, record: logging.LogRecord) -> str:
        t = time.localtime(record.created)
        usec = int((record.created % 1) * 1_000_000)
        tag = LEVEL_TAGS.get(record.levelno) or ("TRC" if record.levelno < logging.DEBUG else "INF")
        if record.name == "pyflow.native":  # lines from the C core carry no Python location
            where = "[core]"
        else:
            where = f"[{record.filename}:{record.lineno}][{record.funcName}]"
        msg = record.getMessage()
        if record.exc_info and logging.getLogger("pyflow").isEnabledFor(logging.DEBUG):
            msg += "\n" + self.formatException(record.exc_info)
        return (f"[{time.strftime('%H:%M:%S', t)}:{usec:06d}][{record.process}][PYFLOW][{tag}]{where} {msg}")


def setup_logging(doca_level: int, sdk_level: int | None = None) -> None:
    from .native import DOCA_TO_PY

    py_level = DOCA_TO_PY[doca_level]
    logger = logging.getLogger("pyflow")
    for h in list(logger.handlers):
        if getattr(h, "_pyflow", False):
            logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._pyflow = True
    handler.setFormatter(DocaStyleFormatter())
    logger.addHandler(handler)
    logger.setLevel(py_level)
    logger.propagate = False
    try:
        from .native import set_log_level, set_sdk_log_level

        set_log_level(doca_level)
        if sdk_level is not None:
            set_sdk_log_level(sdk_level)
    except PyflowError:
        pass


def _fail(exc: Exception, command: str | None) -> int:
    where = f"pyflow {command}" if command else "pyflow"
    print(f"{where}: error: {exc}", file=sys.stderr)
    return getattr(exc, "exit_code", 1)


class PyflowGroup(click.Group):
    """Splits `--` (EAL arguments) off before click parses, and maps errors to one line + exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = list(sys.argv[1:] if args is None else args)
        eal: list[str] = []
        if "--" in args:
            cut = args.index("--")
            args, eal = args[:cut], args[cut + 1:]
        extra.setdefault("obj", {})["eal_args"] = eal
        command = next((a for a in args if not a.startswith("-")), None)
        try:
            rv = super().main(args=args, prog_name=prog_name or "pyflow", standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.exceptions.Abort:
            print("pyflow: aborted", file=sys.stderr)
            code = 1
        except click.ClickException as exc:
            # click's multi-line usage dump is noise: one line naming the flag.
            print(f"pyflow{' ' + command if command else ''}: error: {exc.format_message()}", file=sys.stderr)
            code = 2 if isinstance(exc, click.UsageError) else exc.exit_code
        except PyflowError as exc:
            code = _fail(exc, command)
        except KeyboardInterrupt:
            code = 130
        else:
            code = rv if isinstance(rv, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _emit(data, output: str, text: str) -> None:
    if output == "json":
        click.echo(json.dumps(data, indent=None, sort_keys=True))
    else:
        click.echo(text)


OUTPUT = click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True,
                      help="Output format (json keys are stable).")
JSON_FILE = click.option("-j", "--json", "config_path", required=True, metavar="FILE",
                         help="The pipeline configuration (JSON).")
DOCA_MODE = click.option("--doca-mode", type=click.Choice(["switch", "vnf"]), default=None,
                         help="doca: DOCA Flow mode. switch (default): every pipe on the switch manager (PF and its "
                              "representors); vnf: each port its own copy of the pipes, forwarding between ports.")


@click.group(cls=PyflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-v", "--version", prog_name="pyflow", message="%(prog)s %(version)s")
def cli():
    """pyflow: one JSON packet pipeline on DOCA Flow, DPDK or XDP/TC."""


# ---------------------------------------------------------------------------- run

@cli.command(context_settings={"ignore_unknown_options": False})
@click.option("-b", "--backend", required=True, type=click.Choice(["doca", "dpdk", "ebpf"]),
              help="Where the pipeline runs.")
@JSON_FILE
@click.option("-p", "--port", "ports", multiple=True, metavar="NAME=IFNAME|DPDK_PORT",
              help="Bind a config port (repeatable); overrides the config's ifname.")
@click.option("-l", "--log-level", default=DEFAULT_LOG_LEVEL, show_default=True, metavar="LEVEL",
              help="pyflow's log level: disable, critical, error, warning, info, debug, trace or 10..70.")
@click.option("--sdk-log-level", default=DEFAULT_SDK_LOG_LEVEL, show_default=True, metavar="LEVEL",
              help="Log level of the backend SDK (libbpf, DPDK, DOCA), same values.")
@click.option("-s", "--stats-interval", type=float, default=1.0, show_default=True, metavar="S",
              help="Seconds between counter lines.")
@click.option("-d", "--duration", type=float, default=None, metavar="S", help="Stop after S seconds.")
@OUTPUT
@click.option("--detail", is_flag=True, help="Add per-port/per-pipe counters (with drop reasons) to each print.")
@click.option("-i", "--instance", default=None, metavar="NAME",
              help="Instance name (pins under /sys/fs/bpf/pyflow/NAME); default: the config's name.")
@click.option("--fresh", is_flag=True, help="Discard pinned state of a previous run instead of re-adopting it.")
@click.option("--xdp-mode", type=click.Choice(["auto", "native", "generic", "offload"]), default="auto",
              show_default=True, help="ebpf: XDP attach mode; auto = native, falling back to generic per port.")
@click.option("--keep-datapath", is_flag=True,
              help="ebpf: on a clean stop leave the programs attached and pinned, so traffic keeps flowing and "
                   "the next run re-adopts them (restart/upgrade). Without it a clean stop removes them.")
@click.option("--metrics", default=None, metavar="ADDR:PORT", help="Serve Prometheus /metrics here.")
@DOCA_MODE
# test-only: drive the doca backend against a DOCA Flow simulator library (tests/doca/sim), never a device
@click.option("--doca-sim", "doca_sim", default=None, hidden=True, metavar="LIB")
@click.pass_obj
def run(obj, backend, config_path, ports, log_level, sdk_log_level, stats_interval, duration, output, detail,
        instance, fresh, xdp_mode, keep_datapath, doca_mode, doca_sim, metrics):
    """Run a pipeline until SIGINT/SIGTERM (or --duration). Arguments after `--` go to the DPDK EAL."""
    from .controller import Controller, RunOptions, parse_port_bindings

    level = parse_log_level(log_level)
    sdk_level = parse_log_level(sdk_log_level, "--sdk-log-level")
    if stats_interval <= 0:
        raise UsageError(f"--stats-interval: expected a positive number of seconds, got {stats_interval}")
    if duration is not None and duration < 0:
        raise UsageError(f"--duration: expected a non-negative number of seconds, got {duration}")
    if instance is not None:
        _check_instance_name(instance)
    if backend != "ebpf":
        if keep_datapath:
            raise UsageError(f"--keep-datapath: only the ebpf backend keeps a datapath across runs "
                             f"(--backend {backend} stops with its process)")
        if xdp_mode != "auto":
            raise UsageError(f"--xdp-mode: only for --backend ebpf (got --backend {backend})")
    if doca_sim:
        if backend != "doca":
            raise UsageError("--doca-sim goes with --backend doca")
        os.environ["PYFLOW_DOCA_SIM"] = os.path.abspath(doca_sim)
    _set_doca_mode(backend, doca_mode)
    eal = list(obj.get("eal_args", []))
    if eal and backend not in ("dpdk", "doca"):
        raise UsageError(f"arguments after '--' go to the DPDK EAL; --backend {backend} takes none "
                         f"(got {' '.join(eal)})")
    if backend in ("dpdk", "doca") and not any(a.startswith("--log-level") for a in eal):
        eal = [f"--log-level={DOCA_TO_RTE[sdk_level]}"] + eal
    if metrics is not None:
        from .metrics import parse_listen

        parse_listen(metrics, "--metrics")
    setup_logging(level, sdk_level)
    opts = RunOptions(backend=backend, config_path=config_path, ports=parse_port_bindings(ports),
                      stats_interval=stats_interval, duration=duration, output=output, instance=instance,
                      fresh=fresh, eal_args=eal, detail=detail, xdp_mode=xdp_mode, keep_datapath=keep_datapath,
                      metrics=metrics)
    return Controller(opts).run()


def _set_doca_mode(backend: str, mode: str | None) -> None:
    """The doca backend reads its DOCA Flow mode from PYFLOW_DOCA_MODE when it opens."""
    if mode is None:
        return
    if backend != "doca":
        raise UsageError(f"--doca-mode: only for --backend doca (got --backend {backend})")
    os.environ["PYFLOW_DOCA_MODE"] = mode


def _check_instance_name(name: str) -> None:
    if not name or len(name) > 63 or not all(c.isalnum() or c in "_-." for c in name) or name[0] == ".":
        raise UsageError(f"--instance: expected letters, digits, '_', '-', '.' (at most 63), got {name!r}")


# ---------------------------------------------------------------------------- validate / plan

@cli.command()
@JSON_FILE
@OUTPUT
def validate(config_path, output):
    """Check a configuration without touching the system."""
    from .config import load_config

    cfg = load_config(config_path)
    summary = {
        "config": config_path, "valid": True, "name": cfg.name,
        "ports": len(cfg.ports), "pipes": len(cfg.pipes),
        "entries": sum(len(p.entries) for p in cfg.pipes),
        "sessions": len(cfg.sessions), "miss_policies": len(cfg.miss_policies),
    }
    _emit(summary, output, f"{config_path}: valid ({summary['ports']} ports, {summary['pipes']} pipes, "
                           f"{summary['entries']} entries, {summary['sessions']} sessions, "
                           f"{summary['miss_policies']} miss policies)")


@cli.command()
@click.option("-b", "--backend", required=True, type=click.Choice(["doca", "dpdk", "ebpf"]))
@JSON_FILE
@click.option("-p", "--port", "ports", multiple=True, metavar="NAME=IFNAME|DPDK_PORT")
@OUTPUT
@DOCA_MODE
def plan(backend, config_path, ports, output, doca_mode):
    """Show what the pipeline becomes on a backend: a dry run of the backend's own code (no device, nothing
    created; a dpdk plan needs a pyflow built with DPDK, a doca plan no DOCA SDK)."""
    from . import plan as plan_mod
    from .config import load_config
    from .controller import parse_port_bindings

    _set_doca_mode(backend, doca_mode)
    result = plan_mod.plan(load_config(config_path), backend, parse_port_bindings(ports))
    if output == "json":
        click.echo(json.dumps(result, sort_keys=True, default=str))
    else:
        click.echo(plan_mod.render_plan_text(result))


# ---------------------------------------------------------------------------- lab

@cli.group()
def lab():
    """Network-namespace topologies to try pyflow on."""


@lab.command("up")
@click.option("-t", "--topology", type=click.Choice(["resubmit", "three-host"]), default=None,
              help="A built-in topology  [default: resubmit].")
@click.option("-j", "--json", "config_path", default=None, metavar="CONFIG",
              help="One namespace per port of this config instead (10.0.0.N/24 each), to run it on.")
@click.option("--prefix", default="pfl", show_default=True, help="Name prefix of everything created.")
@click.option("--peer-mode", type=click.Choice(["xdp", "gro"]), default="xdp", show_default=True,
              help="How namespace ends accept XDP-redirected frames.")
@OUTPUT
def lab_up(topology, config_path, prefix, peer_mode, output):
    """Create a lab (removed with `pyflow lab down --prefix P`)."""
    from .lab import Lab

    if config_path is not None:
        if topology is not None:
            raise UsageError("lab up: --topology or --json CONFIG, not both")
        from .config import load_config

        lb = Lab("ports", prefix=prefix, peer_mode=peer_mode, ports=[p.name for p in load_config(config_path).ports])
    else:
        lb = Lab(topology or "resubmit", prefix=prefix, peer_mode=peer_mode)
    lb = lb.up()
    _emit(lb.describe(), output, _lab_text(lb.describe()) + f"\nrun with: {' '.join(lb.port_args())}")


@lab.command("down")
@click.option("--prefix", default="pfl", show_default=True)
def lab_down(prefix):
    """Remove exactly what `lab up --prefix P` created."""
    from .lab import Lab

    Lab.load(prefix).down()
    click.echo(f"lab {prefix}: removed")


@lab.command("list")
@OUTPUT
def lab_list(output):
    """Labs that are up (recorded under /run/pyflow/labs)."""
    from .lab import list_labs

    labs = list_labs()
    _emit(labs, output, "\n".join(_lab_text(d) for d in labs) or "no labs")


def _lab_text(d: dict) -> str:
    lines = [f"lab {d['prefix']}: topology {d['topology']}, peers {d['peer_mode']}"
             + ("" if d.get("alive", True) else " (namespaces missing)")]
    for h in d["hosts"].values():
        ips = ", ".join(h["ips"][:3]) + (", ..." if len(h["ips"]) > 3 else "")
        lines.append(f"  port {h['port']:<8} {h['root_ifname']:<15} <-> {h['netns']}:{h['ifname']} "
                     f"{h['mac']} {ips}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- control API clients

def _default_instance(instance: str | None) -> str:
    if instance:
        _check_instance_name(instance)
        return instance
    from .control import RUN_DIR

    socks = sorted(glob.glob(os.path.join(RUN_DIR, "*.sock")))
    if len(socks) == 1:
        return os.path.basename(socks[0])[:-5]
    if not socks:
        raise UsageError("--instance: no running pyflow instance found in /run/pyflow")
    names = ", ".join(os.path.basename(s)[:-5] for s in socks)
    raise UsageError(f"--instance: several instances are running ({names}); name one")


def _request(instance: str | None, op: str, /, **args):
    """One control API request to the running instance named (or the only one)."""
    from .control import ControlClient

    return ControlClient(_default_instance(instance)).request(op, **args)


INSTANCE = click.option("-i", "--instance", default=None, metavar="NAME",
                        help="Running instance to talk to (default: the only one).")


@cli.command()
@INSTANCE
@OUTPUT
@click.option("--detail", is_flag=True, help="Per-port (with drop reasons), per-pipe and per-entry counters.")
def counters(instance, output, detail):
    """Counters of a running instance."""
    from . import counters as counters_mod

    data = _request(instance, "counters")
    snap = counters_mod.from_json(data)
    text = counters_mod.format_line(snap)
    if detail:
        from .seedcounters import format_seed

        text += "\n" + counters_mod.format_detail(snap)
        seed = format_seed(data)
        text += "\n" + seed if seed else ""
    _emit(data, output, text)


@cli.group()
def entry():
    """Add, change, remove and list entries of a running instance."""


def _kv_pairs(values, flag) -> dict:
    out = {}
    for v in values:
        k, sep, val = v.partition("=")
        if not sep or not k:
            raise UsageError(f"{flag}: expected FIELD=VALUE, got {v!r}")
        out[k] = _scalar(val)
    return out


def _scalar(text: str):
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.startswith("[") or text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise UsageError(f"expected JSON, got {text!r}") from None
    try:
        return int(text, 0)
    except ValueError:
        return text


@entry.command("add")
@INSTANCE
@click.argument("pipe", required=False)
@click.argument("name", required=False)
@click.option("-m", "--match", "match", multiple=True, metavar="FIELD=VALUE", help="Match value (repeatable).")
@click.option("-a", "--action", "actions", multiple=True, metavar="ACTION=VALUE",
              help="Action value, e.g. ipv4.dst=10.0.0.9, push_mpls=100, dec_ttl=true (repeatable).")
@click.option("-f", "--fwd", default=None, metavar="TARGET", help="port:NAME, pipe:NAME, miss, drop, session:ID")
@click.option("--priority", type=int, default=None)
@click.option("--replace", is_flag=True,
              help="Change the entry if one with this name exists, in place: its id, origin and counters stay.")
@click.option("--reset-counters", is_flag=True, help="With --replace: start the changed entry's counters from 0.")
@click.option("--from-file", "from_file", default=None, metavar="FILE.jsonl",
              help="Add every entry of FILE (one JSON object a line, '-' for stdin) in one all-or-nothing request.")
@OUTPUT
def entry_add(instance, pipe, name, match, actions, fwd, priority, replace, reset_counters, from_file, output):
    """Add (or with --replace change) entry NAME in PIPE, or every entry of --from-file.

    \b
    A line of FILE is {"pipe": P, "entry": {"name": N, "match": {...}, "actions": {...}, "fwd": T}}
    or the same flattened: {"pipe": P, "name": N, "match": {...}, ...}; "replace": true on a line
    (or --replace for all) changes an existing entry. Blank lines and lines starting with # are skipped.
    Nothing is installed unless every line is valid and fits.
    """
    if reset_counters and not replace:
        raise UsageError("--reset-counters: only with --replace")
    if from_file is not None:
        if pipe or name or match or actions or fwd or priority is not None:
            raise UsageError("--from-file: PIPE, NAME, --match, --action, --fwd and --priority come from the file")
        return _entry_add_from_file(_default_instance(instance), from_file, replace, output, reset_counters)
    if not pipe or not name:
        raise UsageError("entry add: expected PIPE NAME (or --from-file FILE)")
    spec = {"name": name, "match": _kv_pairs(match, "--match")}
    if actions:
        spec["actions"] = _kv_pairs(actions, "--action")
    if fwd:
        spec["fwd"] = fwd
    if priority is not None:
        spec["priority"] = priority
    result = _request(instance, "entry_add", pipe=pipe, entry=spec, replace=replace, reset_counters=reset_counters)
    _emit(result, output, f"entry {name}: {'changed' if result.get('replaced') else 'added'} in pipe {pipe} "
                          f"(id {result.get('id')})")


def read_entry_lines(path: str, replace_all: bool = False) -> tuple[list[dict], list[int]]:
    """Batch items from a JSON-lines file, and the line number of each (for error messages)."""
    label = "stdin" if path == "-" else path
    try:
        fh = sys.stdin if path == "-" else open(path, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--from-file: {label}: {exc.strerror}") from None
    items, lines = [], []
    with fh if path != "-" else contextlib.nullcontext(fh):
        for number, text in enumerate(fh, 1):
            text = text.strip()
            if not text or text.startswith("#"):
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{label} line {number}: not JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("pipe"), str):
                raise UsageError(f'{label} line {number}: expected {{"pipe": NAME, "entry": {{...}}}} '
                                 f'or {{"pipe": NAME, "name": ..., "match": {{...}}}}')
            spec = obj["entry"] if "entry" in obj else {k: v for k, v in obj.items() if k not in ("pipe", "replace")}
            items.append({"pipe": obj["pipe"], "entry": spec,
                          "replace": bool(obj.get("replace", False)) or replace_all})
            lines.append(number)
    return items, lines


def _entry_add_from_file(instance: str, path: str, replace: bool, output: str, reset_counters: bool = False):
    items, lines = read_entry_lines(path, replace)
    label = "stdin" if path == "-" else path
    if not items:
        raise UsageError(f"--from-file: {label} has no entries")
    try:
        # A big batch is validated and installed in one go on the other side: give it time.
        result = _request(instance, "entry_add", timeout=max(10.0, len(items) / 1000.0), entries=items,
                          reset_counters=reset_counters)
    except PyflowError as exc:
        index = getattr(exc, "index", None)
        if isinstance(index, int) and 0 <= index < len(lines):
            message = str(exc)
            # the server names the position in the request; the user wants the line of the file
            message = message.replace(f"entries[{index}]", f"{label} line {lines[index]}", 1)
            if not message.startswith(f"{label} line"):
                message = f"{label} line {lines[index]}: {message}"
            exc.args = (message,)
        raise
    _emit(result, output, f"{label}: {result['added']} entries added, {result['replaced']} changed")


@entry.command("del")
@INSTANCE
@click.argument("name")
@OUTPUT
def entry_del(instance, name, output):
    """Remove entry NAME."""
    result = _request(instance, "entry_del", name=name)
    _emit(result, output, f"entry {name}: removed")


@entry.command("list")
@INSTANCE
@click.option("--pipe", default=None, help="Only this pipe.")
@OUTPUT
def entry_list(instance, pipe, output):
    """Entries of a running instance (config, runtime and learned)."""
    rows = _request(instance, "entry_list", pipe=pipe)
    lines = [f"{'pipe':<16} {'name':<28} {'origin':<8} {'id':>6} {'packets':>10}  match -> fwd"]
    for r in rows:
        m = ", ".join(f"{k}={v}" for k, v in r.get("match", {}).items()) or "*"
        lines.append(f"{r['pipe']:<16} {r['name']:<28} {r['origin']:<8} {r['id']:>6} {r.get('packets', 0):>10}  "
                     f"{m} -> {r.get('fwd') or '-'}")
    _emit(rows, output, "\n".join(lines))


@cli.group()
def session():
    """Clone sessions / multicast groups of a running instance (members change while traffic flows)."""


@session.command("create")
@INSTANCE
@click.argument("session_id", type=int)
@OUTPUT
def session_create(instance, session_id, output):
    """Create empty session SESSION_ID."""
    result = _request(instance, "session_create", id=session_id)
    _emit(result, output, f"session {session_id}: created")


@session.command("add-member")
@INSTANCE
@click.argument("session_id", type=int)
@click.argument("port")
@click.argument("member_instance", metavar="INSTANCE", type=int)
@click.argument("class_of_service", type=int)
@click.option("--truncate", type=int, default=0, show_default=True, help="Copies keep at most N bytes (0 = all).")
@OUTPUT
def session_add_member(instance, session_id, port, member_instance, class_of_service, truncate, output):
    """Add (or change) member PORT INSTANCE of session SESSION_ID."""
    result = _request(instance, "session_add_member", id=session_id, port=port, instance=member_instance,
                      class_of_service=class_of_service, truncate=truncate)
    _emit(result, output, f"session {session_id}: member {port} instance {member_instance} added")


@session.command("delete-member")
@INSTANCE
@click.argument("session_id", type=int)
@click.argument("port")
@click.argument("member_instance", metavar="INSTANCE", type=int)
@OUTPUT
def session_delete_member(instance, session_id, port, member_instance, output):
    """Remove member PORT INSTANCE from session SESSION_ID."""
    result = _request(instance, "session_delete_member", id=session_id, port=port, instance=member_instance)
    _emit(result, output, f"session {session_id}: member {port} instance {member_instance} removed")


@session.command("list")
@INSTANCE
@OUTPUT
def session_list(instance, output):
    """Sessions and their members."""
    rows = _request(instance, "session_list")
    lines = [f"{'session':>7}  members (port/instance/class_of_service/truncate)"]
    for r in rows:
        members = ", ".join(f"{m['port']}/{m['instance']}/{m['class_of_service']}/{m['truncate']}"
                            for m in r["members"])
        lines.append(f"{r['id']:>7}  {members or '-'}")
    _emit(rows, output, "\n".join(lines))


from . import cli_obs  # noqa: E402,F401  trace, capture, exporter register themselves on cli


def main(argv=None) -> None:
    cli.main(args=argv, prog_name="pyflow")


if __name__ == "__main__":
    main()
