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


def collect(handle, layout: CounterLayout) -> Snapshot:
    """One bulk read of every counter. handle is the cffi pf_instance *."""
    from .instance import MISS_STATS
    from .native import call, ffi, lib

    snap = Snapshot(instance=layout.instance, time=time.time())
    if layout.static_entries:
        ids = ffi.new("uint32_t[]", [eid for _, _, eid in layout.static_entries])
        out = ffi.new("struct pf_counter[]", len(layout.static_entries))
        call(lib.pf_counters_entries, handle, ids, len(layout.static_entries), out)
        snap.static_entries = [EntryCount(name, out[i].packets, out[i].bytes, pipe)
                               for i, (name, pipe, _) in enumerate(layout.static_entries)]
    pc = ffi.new("struct pf_pipe_counter *")
    pipe_names = {}
    for name, pid in layout.pipes:
        call(lib.pf_counters_pipe, handle, pid, pc)
        snap.pipes[name] = {"hits": pc.hits, "misses": pc.misses}
        pipe_names[pid] = name
    ms = ffi.new("struct pf_miss_stats *")
    call(lib.pf_miss_stats_get, handle, ms)
    snap.miss_handler = {k: getattr(ms, k) for k in MISS_STATS}

    single_policy = len(layout.miss_policies) == 1
    for pname, pipe, pipe_id, install_id, template in layout.miss_policies:
        misses = snap.pipes.get(pipe, {}).get("misses", 0)
        # With one policy the handler's own count is exact; with several, the pipe's misses stand in.
        snap.miss_paths.append(EntryCount(pname, ms.received if single_policy else misses, 0, pipe))
        snap.pipe_misses.append(EntryCount(pipe, misses, 0, pipe))
        snap.learned_entries += _learned(handle, install_id, pipe_names.get(install_id, ""), template)
    snap.learned_entries.sort(key=lambda e: ipv4_sort_key(e.name))

    port_c = ffi.new("struct pf_port_counter *")
    for name, port_id in layout.ports:
        call(lib.pf_counters_port, handle, port_id, port_c)
        snap.ports.append(PortCount(name, port_c.rx_packets, port_c.rx_bytes, port_c.tx_packets, port_c.tx_bytes,
                                    {r: port_c.drops[i] for i, r in enumerate(DROP_REASONS)}))
    return snap


def _learned(handle, pipe_id: int, pipe_name: str, template: str) -> list[EntryCount]:
    from .compiler import decode_fields
    from .config.fields import FIELDS
    from .native import call, ffi, lib

    learned_flag = lib.PF_ENTRY_LEARNED
    cap = 1024
    while True:
        infos = ffi.new("struct pf_entry_info[]", cap)
        count = ffi.new("uint32_t *")
        call(lib.pf_entry_list, handle, pipe_id, infos, cap, count)
        if count[0] < cap:
            break
        cap *= 4
    wanted = [n for n in template_fields(template) if n in FIELDS]
    rows = [(infos[i].entry.id, decode_fields(ffi.addressof(infos[i], "match"), wanted))
            for i in range(count[0]) if infos[i].entry.flags & learned_flag]
    if not rows:
        return []
    ids = ffi.new("uint32_t[]", [r[0] for r in rows])
    out = ffi.new("struct pf_counter[]", len(rows))
    call(lib.pf_counters_entries, handle, ids, len(rows), out)
    return [EntryCount(render_entry_name(template, values), out[i].packets, out[i].bytes, pipe_name)
            for i, (_, values) in enumerate(rows)]
