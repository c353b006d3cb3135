"""Counter snapshots: read in bulk from the C core, rendered as the resubmit example's line, a detail view or JSON.

The one-line form is the packet-resubmit sample's, byte for byte:

    Static Entry Counters: root_host_to_net_vf0: 10, rss_pipe: 11, ; egress entry counters:
    192.168.99.101-flow: 1, ... ; Pipe Miss counters: 11,

(on one line). "Static" lists the entries written in the config plus, per miss
policy, the frames that reached the miss handler (DOCA's RSS pipe); "egress
entry counters" lists entries the miss handler learned, named by the policy's
entry_name template; "Pipe Miss counters" is the miss count of every pipe that
has a miss policy.
"""
from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import asdict, dataclass, field

DROP_REASONS = ("malformed", "action", "no_miss_handler", "depth", "tx_fail", "sampled", "action_fail",
                "rate_limit")
JSON_SCHEMA_VERSION = 1


@dataclass
class EntryCount:
    name: str
    packets: int
    bytes: int = 0
    pipe: str = ""


@dataclass
class PortCount:
    name: str
    rx_packets: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    tx_bytes: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    xdp_mode: str = ""      # ebpf: native / generic / offload, as attached


@dataclass
class Snapshot:
    instance: str = ""
    time: float = 0.0
    static_entries: list[EntryCount] = field(default_factory=list)
    miss_paths: list[EntryCount] = field(default_factory=list)      # per miss policy: frames sent to the handler
    learned_entries: list[EntryCount] = field(default_factory=list)
    pipe_misses: list[EntryCount] = field(default_factory=list)     # pipes with a miss policy: misses
    pipes: dict[str, dict[str, int]] = field(default_factory=dict)  # every pipe: hits, misses
    ports: list[PortCount] = field(default_factory=list)
    miss_handler: dict[str, int] = field(default_factory=dict)

    def static_total(self, name: str) -> int:
        for e in self.static_entries + self.miss_paths:
            if e.name == name:
                return e.packets
        raise KeyError(name)


def format_line(snap: Snapshot) -> str:
    static = "".join(f"{e.name}: {e.packets}, " for e in snap.static_entries + snap.miss_paths)
    learned = "".join(f"{e.name}: {e.packets}, " for e in snap.learned_entries)
    misses = " ".join(f"{e.packets}," for e in snap.pipe_misses)
    return f"Static Entry Counters: {static}; egress entry counters: {learned}; Pipe Miss counters: {misses}"


def format_detail(snap: Snapshot) -> str:
    """Per port (with drop reasons), per pipe and miss-handler counters, for humans."""
    lines = [f"instance {snap.instance}" if snap.instance else "counters"]
    lines.append(f"  {'port':<12} {'xdp':<8} {'rx_pkts':>10} {'rx_bytes':>12} {'tx_pkts':>10} {'tx_bytes':>12}  drops")
    for p in snap.ports:
        drops = ", ".join(f"{k}={v}" for k, v in p.drops.items() if v) or "-"
        lines.append(f"  {p.name:<12} {p.xdp_mode or '-':<8} {p.rx_packets:>10} {p.rx_bytes:>12} {p.tx_packets:>10} "
                     f"{p.tx_bytes:>12}  {drops}")
    lines.append(f"  {'pipe':<24} {'hits':>10} {'misses':>10}")
    for name, c in snap.pipes.items():
        lines.append(f"  {name:<24} {c.get('hits', 0):>10} {c.get('misses', 0):>10}")
    if snap.static_entries or snap.learned_entries:
        lines.append(f"  {'entry':<24} {'pipe':<16} {'packets':>10} {'bytes':>12}")
        for e in snap.static_entries + snap.learned_entries:
            lines.append(f"  {e.name:<24} {e.pipe:<16} {e.packets:>10} {e.bytes:>12}")
    if snap.miss_handler:
        lines.append("  miss handler: " + ", ".join(f"{k}={v}" for k, v in snap.miss_handler.items()))
    return "\n".join(lines)


def to_json(snap: Snapshot) -> dict:
    """Stable keys: add new ones, never rename."""
    d = asdict(snap)
    d["ports"] = {p["name"]: {k: v for k, v in p.items() if k != "name"} for p in d["ports"]}
    d["schema"] = JSON_SCHEMA_VERSION
    return d


def from_json(d: dict) -> Snapshot:
    ports = [PortCount(name=n, **v) for n, v in d.get("ports", {}).items()]
    return Snapshot(instance=d.get("instance", ""), time=d.get("time", 0.0),
                    static_entries=[EntryCount(**e) for e in d.get("static_entries", [])],
                    miss_paths=[EntryCount(**e) for e in d.get("miss_paths", [])],
                    learned_entries=[EntryCount(**e) for e in d.get("learned_entries", [])],
                    pipe_misses=[EntryCount(**e) for e in d.get("pipe_misses", [])],
                    pipes=d.get("pipes", {}), ports=ports, miss_handler=d.get("miss_handler", {}))


# ---------------------------------------------------------------------------
# Learned-entry names: the policy's entry_name template, e.g. "{ipv4.src}-flow".

_PLACEHOLDER = re.compile(r"\{([a-z0-9_]+\.[a-z0-9_]+)\}")


def render_entry_name(template: str, values: dict[str, int]) -> str:
    """Fill {field} placeholders from values (field name -> int)."""
    from .config.fields import FIELDS, format_value

    def sub(m):
        name = m.group(1)
        if name not in FIELDS or name not in values:
            return m.group(0)
        return format_value(FIELDS[name], values[name])

    return _PLACEHOLDER.sub(sub, template)


def template_fields(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)


def ipv4_sort_key(name: str):
    """Learned names sort by the address they start with, so 192.168.99.9 precedes .10."""
    head = name.split("-", 1)[0]
    try:
        return (0, int(ipaddress.ip_address(head)), name)
    except ValueError:
        return (1, 0, name)


# ---------------------------------------------------------------------------
# Reading counters from a live instance.

@dataclass
class CounterLayout:
    """What to read and what to call it; built once from the config and the applied program."""

    instance: str
    static_entries: list[tuple[str, str, int]]          # (entry name, pipe name, entry id)
    miss_policies: list[tuple[str, str, int, int, str]]  # (policy name, pipe, pipe id, install pipe id, template)
    pipes: list[tuple[str, int]]                         # (pipe name, pipe id)
    ports: list[tuple[str, int]]                         # (port name, port id)


def collect(instance, layout: CounterLayout) -> Snapshot:
    """One read of every counter, through the instance's binding (pyflow.instance.Instance)."""
    snap = Snapshot(instance=layout.instance, time=time.time())
    if layout.static_entries:
        counts = instance.counters_entries([eid for _, _, eid in layout.static_entries])
        snap.static_entries = [EntryCount(name, *counts[eid], pipe) for name, pipe, eid in layout.static_entries]
    pipe_names = {}
    for name, pid in layout.pipes:
        snap.pipes[name] = instance.counters_pipe(pid)
        pipe_names[pid] = name
    snap.miss_handler = instance.miss_stats()

    single_policy = len(layout.miss_policies) == 1
    for pname, pipe, pipe_id, install_id, template in layout.miss_policies:
        misses = snap.pipes.get(pipe, {}).get("misses", 0)
        # With one policy the handler's own count is exact; with several, the pipe's misses stand in.
        snap.miss_paths.append(EntryCount(pname, snap.miss_handler["received"] if single_policy else misses, 0,
                                          pipe))
        snap.pipe_misses.append(EntryCount(pipe, misses, 0, pipe))
        snap.learned_entries += _learned(instance, install_id, pipe_names.get(install_id, ""), template)
    snap.learned_entries.sort(key=lambda e: ipv4_sort_key(e.name))

    for name, port_id in layout.ports:
        c = instance.counters_port(port_id)
        snap.ports.append(PortCount(name, c["rx_packets"], c["rx_bytes"], c["tx_packets"], c["tx_bytes"],
                                    dict(zip(DROP_REASONS, c["drops"]))))
    return snap


def _learned(instance, pipe_id: int, pipe_name: str, template: str) -> list[EntryCount]:
    from .compiler import decode_fields
    from .config.fields import FIELDS
    from .native import ffi, lib

    wanted = [n for n in template_fields(template) if n in FIELDS]
    rows = [(info.entry.id, decode_fields(ffi.addressof(info, "match"), wanted))
            for info in instance.entry_list(pipe_id) if info.entry.flags & lib.PF_ENTRY_LEARNED]
    counts = instance.counters_entries([eid for eid, _ in rows])
    return [EntryCount(render_entry_name(template, values), *counts[eid], pipe_name) for eid, values in rows]
