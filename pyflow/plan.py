"""What a config becomes on each backend, without touching the system.

plan() returns plain JSON-able data (stable order); render_plan_text() prints
it. For dpdk the rules are dpdk-testpmd `flow create` commands, for doca the
DOCA Flow pipe graph, for ebpf the programs, maps and map entries.
"""
from __future__ import annotations

import json

from .config.fields import FIELDS, format_value
from .config.model import Actions, Config, Entry, Fwd, MatchValue, Pipe, hash_buckets
from .controller import check_backend_name
from .paths import PIN_ROOT

MISS_QUEUE = 0          # rx queue the DPDK miss handler polls


# ---- shared text forms ----------------------------------------------------

def match_text(name: str, mv: MatchValue, port_names: dict[int, str] | None = None) -> str:
    f = FIELDS[name]
    value = format_value(f, mv.value)
    if name == "meta.port" and port_names and mv.value in port_names and mv.mask == f.full_mask:
        return f"{name}={port_names[mv.value]}"
    if mv.prefixlen is not None and f.is_address and mv.prefixlen != f.bits:
        return f"{name}={value}/{mv.prefixlen}"
    if mv.mask != f.full_mask:
        return f"{name}={value}/{format_value(f, mv.mask) if f.kind != 'uint' else hex(mv.mask)}"
    return f"{name}={value}"


def actions_text(a: Actions) -> list[str]:
    out = [f"set {k}={format_value(FIELDS[k], v)}" for k, v in a.sets.items()]
    if a.pop_vlan:
        out.append("pop_vlan")
    if a.pop_mpls:
        out.append(f"pop_mpls {a.pop_mpls}")
    if a.dec_ttl:
        out.append("dec_ttl")
    if a.push_vlan is not None:
        out.append(f"push_vlan {a.push_vlan}")
    if a.push_mpls:
        out.append("push_mpls " + ",".join(map(str, a.push_mpls)) + (f" ttl {a.mpls_ttl}" if a.mpls_ttl else ""))
    if a.clone is not None:
        out.append(f"clone session:{a.clone}")
    if a.drop_pct is not None:
        out.append(f"drop_pct {a.drop_pct}%")
    if a.count:
        out.append("count")
    return out


def _entry_fwd(e: Entry, pipe: Pipe) -> Fwd:
    return e.fwd or pipe.fwd or Fwd("drop")


def _entry_order(e: Entry, pipe: Pipe) -> dict:
    """What orders an entry within its pipe: priority (control) or weight (hash)."""
    if pipe.type == "control":
        return {"priority": e.priority}
    if pipe.type == "hash":
        return {"weight": e.weight}
    return {}


def _common(cfg: Config, backend: str, bindings: dict[str, str]) -> dict:
    ids = cfg.pipe_ids()
    port_names = {p.id: p.name for p in cfg.ports}
    pipes = []
    for p in cfg.pipes:
        pipes.append({
            "id": ids[p.name], "name": p.name, "type": p.type, "domain": p.domain, "root": p.root,
            "match": p.match_names(), "actions": list(p.actions),
            "fwd": str(p.fwd) if p.fwd else None, "fwd_miss": str(p.fwd_miss), "counters": p.counters,
            "max_entries": p.max_entries,
            "entries": [{"name": e.name, "match": [match_text(k, v, port_names) for k, v in e.match.items()],
                         "actions": actions_text(e.actions), "fwd": str(_entry_fwd(e, p)),
                         **_entry_order(e, p)} for e in p.entries],
        })
    return {
        "backend": backend,
        "name": cfg.name,
        "ports": [{"name": p.name, "id": p.id, "role": p.role, "binding": bindings.get(p.name, p.ifname),
                   **({"egress_pipe": p.egress_pipe} if p.egress_pipe else {})} for p in cfg.ports],
        "root": cfg.root_pipe.name,
        "pipes": pipes,
        "sessions": [{"id": s.id, "name": s.name, "members": [
            {"port": m.port, "instance": m.instance, "class_of_service": m.class_of_service,
             "truncate": m.truncate} for m in s.members]} for s in cfg.sessions],
        "miss_policies": [{
            "name": mp.name, "pipe": mp.pipe, "install": mp.install, "match": list(mp.match),
            "set": {k: e.text for k, e in mp.sets.items()}, "actions": actions_text(mp.actions),
            "fwd": str(mp.fwd or cfg.pipe(mp.install).fwd), "max_flows": mp.max_flows,
            "idle_timeout": mp.idle_timeout, "rate_limit": mp.rate_limit, "burst": mp.burst,
            "entry_name": mp.entry_name} for mp in cfg.miss_policies],
    }


def plan(cfg: Config, backend: str, bindings: dict[str, str] | None = None) -> dict:
    check_backend_name(backend)
    bindings = dict(bindings or {})
    result = _common(cfg, backend, bindings)
    result[backend] = {"doca": _doca, "dpdk": _dpdk, "ebpf": _ebpf}[backend](cfg, bindings)
    return result


# ---- dpdk: testpmd flow rules ---------------------------------------------

def _dpdk_port(cfg: Config, bindings: dict[str, str], name: str) -> int:
    port = cfg.port(name)
    binding = bindings.get(name, port.ifname)
    return int(binding) if binding is not None and str(binding).isdigit() else port.id


def _groups(cfg: Config) -> dict[str, int]:
    groups, n = {}, 1
    for p in cfg.pipes:
        if p.root:
            groups[p.name] = 0
        else:
            groups[p.name] = n
            n += 1
    return groups


def _reaching_ports(cfg: Config) -> dict[str, set[str]]:
    """Ports whose frames can reach each pipe (rte_flow rules are created per port)."""
    port_by_id = {p.id: p.name for p in cfg.ports}
    reach = {p.name: set() for p in cfg.pipes}
    reach[cfg.root_pipe.name] = {p.name for p in cfg.ports}
    for p in cfg.ports:
        if p.egress_pipe:
            reach[p.egress_pipe].add(p.name)
    changed = True
    while changed:
        changed = False
        for pipe in cfg.pipes:
            src = reach[pipe.name]
            targets = [(f, src) for f in (pipe.fwd, pipe.fwd_miss) if f]
            for e in pipe.entries:
                ports = src
                if "meta.port" in e.match and e.match["meta.port"].mask == FIELDS["meta.port"].full_mask:
                    ports = src & {port_by_id.get(e.match["meta.port"].value)}
                targets.append((_entry_fwd(e, pipe), ports))
            for f, ports in targets:
                if f.kind == "pipe" and not ports <= reach[f.target]:
                    reach[f.target] |= ports
                    changed = True
    return reach


_TESTPMD_ITEMS = {
    "eth.src": ("eth", "src"), "eth.dst": ("eth", "dst"), "eth.type": ("eth", "type"),
    "vlan.id": ("vlan", "vid"), "mpls.label": ("mpls", "label"),
    "ipv4.src": ("ipv4", "src"), "ipv4.dst": ("ipv4", "dst"), "ipv4.proto": ("ipv4", "proto"),
    "ipv4.ttl": ("ipv4", "ttl"), "ipv4.dscp": ("ipv4", "tos"),
    "ipv6.src": ("ipv6", "src"), "ipv6.dst": ("ipv6", "dst"), "ipv6.next": ("ipv6", "proto"),
    "ipv6.hop": ("ipv6", "hop"), "tcp.flags": ("tcp", "flags"), "meta.mark": ("mark", "id"),
}
SOFTWARE_ONLY_FIELDS = ("meta.packet_path", "mpegts.frame")


def _testpmd_pattern(match: dict[str, MatchValue]) -> tuple[str, list[str]]:
    items: dict[str, list[str]] = {}
    notes = []
    proto = match.get("ipv4.proto") or match.get("ipv6.next")
    for name, mv in match.items():
        f = FIELDS[name]
        if name == "meta.port":
            continue        # the rule is created on that port
        if name in SOFTWARE_ONLY_FIELDS:
            notes.append(f"{name} is not an rte_flow item: this rule runs in the software pipes")
            continue
        if name in ("l4.sport", "l4.dport"):
            l4 = {6: "tcp", 17: "udp", 132: "sctp"}.get(proto.value if proto else 17, "udp")
            key, item = ("src" if name == "l4.sport" else "dst"), l4
            value, mask = str(mv.value), hex(mv.mask)
        else:
            item, key = _TESTPMD_ITEMS[name]
            value, mask = format_value(f, mv.value), format_value(f, mv.mask)
            if name == "ipv4.dscp":
                value, mask = hex(mv.value << 2), hex(mv.mask << 2)
            elif f.kind in ("uint", "be", "port") or name == "eth.type":
                value, mask = (hex(mv.value) if name == "eth.type" else str(mv.value)), hex(mv.mask)
        if mv.prefixlen is not None and f.is_address and mv.prefixlen != f.bits:
            items.setdefault(item, []).append(f"{key} spec {value} {key} prefix {mv.prefixlen}")
        elif mv.mask != f.full_mask:
            items.setdefault(item, []).append(f"{key} spec {value} {key} mask {mask}")
        else:
            items.setdefault(item, []).append(f"{key} is {value}")
    if any(i in items for i in ("ipv4", "ipv6", "mpls", "vlan", "tcp", "udp", "sctp")):
        items.setdefault("eth", [])
    order = ["mark", "eth", "vlan", "mpls", "ipv4", "ipv6", "tcp", "udp", "sctp"]
    parts = [" ".join([i] + items[i]) for i in order if i in items]
    return " / ".join(parts + ["end"]) if parts else "eth / end", notes


class _DpdkRules:
    def __init__(self, cfg: Config, bindings: dict[str, str]):
        self.cfg, self.bindings = cfg, bindings
        self.groups = _groups(cfg)
        self.setup: list[str] = []      # 'set raw_encap' / 'set sample_actions' commands
        self.notes: list[str] = []
        self.encaps: dict[tuple, int] = {}
        self.samples: dict[tuple, int] = {}

    def fwd_actions(self, fwd: Fwd) -> list[str]:
        if fwd.kind == "port":
            return [f"port_id id {_dpdk_port(self.cfg, self.bindings, fwd.target)}"]
        if fwd.kind == "pipe":
            return [f"jump group {self.groups[fwd.target]}"]
        if fwd.kind == "miss":
            return [f"queue index {MISS_QUEUE}"]
        if fwd.kind == "session":
            members = self.cfg.session(fwd.target).members
            if not members:
                return ["drop"]
            acts = [f"sample ratio 1 index {self.sample(m.port)}" for m in members[:-1]]
            return acts + [f"port_id id {_dpdk_port(self.cfg, self.bindings, members[-1].port)}"]
        if fwd.kind == "kernel":
            return ["passthru"]
        return ["drop"]

    def sample(self, port: str) -> int:
        key = ("port", port)
        if key not in self.samples:
            idx = len(self.samples)
            self.samples[key] = idx
            self.setup.append(f"set sample_actions {idx} port_id id {_dpdk_port(self.cfg, self.bindings, port)} / end")
        return self.samples[key]

    def encap(self, labels: list[int]) -> tuple[int, int]:
        key = tuple(labels)
        if key not in self.encaps:
            idx = len(self.encaps) * 2
            self.encaps[key] = idx
            self.setup.append(f"set raw_decap {idx} eth / end_set")
            stack = " / ".join(f"mpls label is {label}" for label in labels)
            self.setup.append(f"set raw_encap {idx + 1} eth type is 0x8847 / {stack} / end_set")
        return self.encaps[key], self.encaps[key] + 1

    def actions(self, a: Actions, where: str) -> list[str]:
        out = []
        if a.pop_vlan:
            out.append("of_pop_vlan")
        if a.pop_mpls:
            out += ["of_pop_mpls ethertype 0x0800"] * a.pop_mpls
        names = {"eth.src": "set_mac_src mac_addr", "eth.dst": "set_mac_dst mac_addr",
                 "ipv4.src": "set_ipv4_src ipv4_addr", "ipv4.dst": "set_ipv4_dst ipv4_addr",
                 "ipv6.src": "set_ipv6_src ipv6_addr", "ipv6.dst": "set_ipv6_dst ipv6_addr",
                 "l4.sport": "set_tp_src port", "l4.dport": "set_tp_dst port",
                 "ipv4.dscp": "set_ipv4_dscp dscp", "meta.mark": "mark id", "vlan.id": "of_set_vlan_vid vlan_vid"}
        for k, v in a.sets.items():
            out.append(f"{names[k]} {format_value(FIELDS[k], v)}")
        if a.dec_ttl:
            out.append("dec_ttl")
        if a.push_vlan is not None:
            out += ["of_push_vlan ethertype 0x8100", f"of_set_vlan_vid vlan_vid {a.push_vlan}"]
        if a.push_mpls:
            decap, encap = self.encap(a.push_mpls)
            out += [f"raw_decap index {decap}", f"raw_encap index {encap}"]
        if a.clone is not None:
            for m in self.cfg.session(a.clone).members:
                out.append(f"sample ratio 1 index {self.sample(m.port)}")
        if a.drop_pct is not None:
            self.notes.append(f"{where}: drop_pct has no rte_flow action; it runs in the software pipes")
        return out

    def rule(self, port: str, pipe: Pipe, priority: int, pattern: str, acts: list[str]) -> str:
        attr = "egress" if any(p.egress_pipe == pipe.name for p in self.cfg.ports) else "ingress"
        return (f"flow create {_dpdk_port(self.cfg, self.bindings, port)} {attr} group {self.groups[pipe.name]} "
                f"priority {priority} pattern {pattern} actions {' / '.join(acts + ['end'])}")


def _dpdk(cfg: Config, bindings: dict[str, str]) -> dict:
    r = _DpdkRules(cfg, bindings)
    reach = _reaching_ports(cfg)
    ports_in_order = [p.name for p in cfg.ports]
    port_by_id = {p.id: p.name for p in cfg.ports}
    rules = []
    for pipe in cfg.pipes:
        ports = [p for p in ports_in_order if p in reach[pipe.name]]
        if pipe.domain == "egress" and not any(p.egress_pipe == pipe.name for p in cfg.ports):
            r.notes.append(f"pipe {pipe.name}: egress domain reached by jump; rte_flow matches it in an ingress "
                           f"group before the tx port is chosen")
        if pipe.type == "hash":
            r.notes.append(f"pipe {pipe.name}: weighted hash selection has no portable rte_flow form; "
                           f"group {r.groups[pipe.name]} sends to the software pipes")
        max_prio = 0
        for e in ([] if pipe.type == "hash" else pipe.entries):
            pattern, notes = _testpmd_pattern(e.match)
            r.notes += [f"entry {e.name}: {n}" for n in notes]
            if pipe.type == "lpm":
                f = FIELDS[pipe.lpm_field]
                prio = f.bits - e.match[pipe.lpm_field].prefixlen   # longer prefixes first
            elif pipe.type == "control":
                prio = e.priority
            else:
                prio = 0
            max_prio = max(max_prio, prio)
            acts = r.actions(e.actions, f"entry {e.name}")
            if pipe.counters or e.actions.count:
                acts.append("count")
            acts += r.fwd_actions(_entry_fwd(e, pipe))
            entry_ports = ports
            if "meta.port" in e.match:
                only = port_by_id.get(e.match["meta.port"].value)
                entry_ports = [p for p in ports if p == only]
            for port in entry_ports:
                rules.append({"pipe": pipe.name, "entry": e.name, "port": port,
                              "command": r.rule(port, pipe, prio, pattern, acts)})
        miss_acts = (["count"] if pipe.counters else []) + r.fwd_actions(
            pipe.fwd if pipe.type == "hash" and pipe.fwd else pipe.fwd_miss)
        if pipe.type == "hash":
            miss_acts = [f"queue index {MISS_QUEUE}"]
        for port in ports:
            rules.append({"pipe": pipe.name, "entry": None, "port": port, "miss": True,
                          "command": r.rule(port, pipe, max_prio + 1, "eth / end", miss_acts)})
    learn = []
    for mp in cfg.miss_policies:
        target = cfg.pipe(mp.install)
        pattern = " / ".join(["eth"] + sorted({_TESTPMD_ITEMS.get(m, ("l4", ""))[0] + " "
                                               + _TESTPMD_ITEMS.get(m, ("", m))[1] + " is <" + m + ">"
                                               for m in mp.match}) + ["end"])
        acts = []
        for k, expr in mp.sets.items():
            verb = {"ipv4.dst": "set_ipv4_dst ipv4_addr", "ipv4.src": "set_ipv4_src ipv4_addr",
                    "mpls.push": "raw_encap index"}.get(k, f"set {k}")
            acts.append(f"{verb} <{expr.text}>")
        acts += r.actions(mp.actions, f"policy {mp.name}")
        if target.counters:
            acts.append("count")
        acts += r.fwd_actions(mp.fwd or target.fwd or Fwd("drop"))
        for port in [p for p in ports_in_order if p in reach[target.name]]:
            learn.append({"policy": mp.name, "port": port,
                          "command": r.rule(port, target, 0, pattern, acts)})
    return {"miss_queue": MISS_QUEUE, "groups": r.groups, "setup": r.setup, "rules": rules,
            "learned_rule_template": learn, "notes": sorted(set(r.notes))}


# ---- doca: DOCA Flow pipe graph -------------------------------------------
# The graph is not described here: the doca backend itself builds it, in a dry run that renders
# every DOCA Flow call it would make (pf_instance_describe); the tests check that the simulator
# receives exactly this graph.

RSS_PIPE = "rss_pipe"


def doca_bindings(cfg: Config, bindings: dict[str, str]) -> dict[str, str]:
    """DOCA ports are bound by DPDK port id: an explicit binding, else the config port's id."""
    out = {}
    for p in cfg.ports:
        b = bindings.get(p.name) or p.ifname
        out[p.name] = b if b and str(b).split(",")[0].isdigit() else str(p.id)
    return out


def doca_graph(cfg: Config, bindings: dict[str, str]) -> dict:
    """The DOCA Flow pipe graph the doca backend creates for cfg, from a dry run of the backend."""
    from .compiler import compile_program
    from .errors import PyflowError
    from .instance import Instance

    program = compile_program(cfg, doca_bindings(cfg, bindings))
    try:
        with Instance("doca", cfg.name or "plan", dry=True, no_pin=True) as inst:
            program.apply(inst)
            inst.start()
            graph = json.loads(inst.describe())
    except PyflowError as exc:
        return {"refused": str(exc), "pipes": []}
    names = {eid + 1: name for name, eid in program.entry_ids.items()}
    for p in graph["pipes"]:
        for e in p["entries"]:
            e["name"] = names.get(e.pop("ctx"), p["name"])
    return graph


def _doca(cfg: Config, bindings: dict[str, str]) -> dict:
    graph = doca_graph(cfg, bindings)
    graph["learn"] = [{"policy": mp.name, "on_miss_of": mp.pipe, "add_entry_to": mp.install,
                       "match": list(mp.match), "actions": {k: f"<{e.text}>" for k, e in mp.sets.items()},
                       "then": "resubmit: tx with meta.pkt_meta = tag | pipe; resubmit_root forwards it to "
                               f"{mp.pipe}", "entry_name": mp.entry_name} for mp in cfg.miss_policies]
    return graph


# ---- ebpf: programs, maps, entries ----------------------------------------

EBPF_MAPS = [
    ("config", "array", "root pipe, flags"), ("pipes", "array", "struct pf_pipe per pipe id"),
    ("pipe_masks", "array", "pipe id * 8 + mask slot -> struct pf_fields"),
    ("mask_keys", "array", "pipe id * 8 + mask slot -> struct pf_mask_key (which table, which words)"),
    ("port_entries", "array", "mask on meta.port alone: block * 64 + port -> struct pf_entry"),
    ("entries_c1", "hash", "mask on one 32-bit word: pf_ckey slot + word -> struct pf_entry"),
    ("entries_c", "hash", "mask on 2-4 32-bit words: struct pf_ckey -> struct pf_entry"),
    ("entries", "hash", "wider masks: struct pf_flow_key -> struct pf_entry (basic, control)"),
    ("lpm", "lpm_trie", "struct pf_lpm_key -> struct pf_entry"),
    ("hash_buckets", "array", "hash slot * 128 + bucket -> struct pf_entry"),
    ("ports", "array", "port id -> struct pf_port"), ("ifindex_port", "hash", "ifindex -> port id"),
    ("tx_ports", "devmap", "port id -> ifindex (bpf_redirect_map)"),
    ("xsks", "xskmap", "port * 16 + queue -> AF_XDP socket of the miss handler"),
    ("sessions", "array", "session id -> struct pf_session"),
    ("entry_counters", "percpu_array", "entry id -> packets, bytes"),
    ("entry_seen", "array", "entry id -> last hit (ns)"),
    ("pipe_counters", "percpu_array", "pipe id -> hits, misses"),
    ("port_counters", "percpu_array", "port id -> rx, tx, drops"),
]


def _exact_map(match: dict[str, MatchValue]) -> str:
    """The table the ebpf backend keeps an exact/control entry in, by the 32-bit words of struct
    pf_fields its mask touches (entries.c: mask_key_build); the first 16 mask slots on meta.port
    alone take an array block, later ones are packed."""
    from .native import ffi

    if set(match) == {"meta.port"} and match["meta.port"].mask == FIELDS["meta.port"].full_mask:
        return "port_entries"
    words = set()
    for name, mv in match.items():
        f = FIELDS[name]
        off = ffi.offsetof("struct pf_fields", f.attr)
        for i, byte in enumerate(mv.mask.to_bytes(f.size, "big")):
            if byte:
                words.add((off + (i if f.size > 4 else 0)) // 4)
    if len(words) <= 1:
        return "entries_c1"
    return "entries_c" if len(words) <= 4 else "entries"


def _ebpf(cfg: Config, bindings: dict[str, str]) -> dict:
    ids = cfg.pipe_ids()
    instance = cfg.name or "pyflow"
    attach = [{"port": p.name, "ifname": bindings.get(p.name, p.ifname) or f"<--port {p.name}=IFNAME>",
               "mode": "driver, falling back to generic"} for p in cfg.ports]
    programs = [{"name": "pf_xdp_root", "object": "datapath.bpf.o", "hook": "xdp", "attach": attach}]
    egress_ports = [p.name for p in cfg.ports if p.egress_pipe]
    if egress_ports:
        programs.append({"name": "egress pipes", "object": "datapath.bpf.o", "hook": "tc clsact egress",
                         "attach": [a for a in attach if a["port"] in egress_ports]})
    entries = []
    slot = 0
    for p in cfg.pipes:
        if p.type == "hash":
            buckets = hash_buckets([e.weight for e in p.entries])
            first = 0
            for e, n in zip(p.entries, buckets):
                entries.append({"map": "hash_buckets", "pipe": p.name, "entry": e.name,
                                "keys": f"{slot * 128 + first}..{slot * 128 + first + n - 1}",
                                "share": f"{n}/{sum(buckets)}", "fwd": str(_entry_fwd(e, p)),
                                "actions": actions_text(e.actions)})
                first += n
            slot += 1
            continue
        for e in p.entries:
            if p.type == "lpm":
                key = {"prefixlen": 64 + e.match[p.lpm_field].prefixlen, "pipe": ids[p.name],
                       "addr": match_text(p.lpm_field, e.match[p.lpm_field])}
                mapname = "lpm"
            else:
                key = {"pipe": ids[p.name], "fields": [match_text(k, v) for k, v in e.match.items()]}
                mapname = _exact_map(e.match)
            entries.append({"map": mapname, "pipe": p.name, "entry": e.name, "key": key,
                            "fwd": str(_entry_fwd(e, p)), "actions": actions_text(e.actions)})
    replicate = []
    for s in cfg.sessions:
        replicate.append({"session": s.id, "how": "bpf_clone_redirect from TC (per-copy metadata needs an skb)",
                          "members": [m.port for m in s.members]})
    miss = None
    if cfg.miss_policies:
        miss = {"path": "XDP redirect into an AF_XDP socket (xsks) with struct pf_xdp_meta in front",
                "resubmit": "BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, ingress_ifindex = the original port",
                "policies": [{"name": mp.name, "pipe": mp.pipe,
                              "install_map": _exact_map({f: MatchValue(0, FIELDS[f].full_mask) for f in mp.match}),
                              "install_pipe": ids[mp.install], "match": list(mp.match),
                              "set": {k: e.text for k, e in mp.sets.items()}, "entry_name": mp.entry_name}
                             for mp in cfg.miss_policies]}
    return {"pin_dir": f"{PIN_ROOT}/{instance}", "programs": programs,
            "maps": [{"name": n, "type": t, "holds": h} for n, t, h in EBPF_MAPS],
            "entries": entries, "replicate": replicate, "miss": miss}


# ---- text -------------------------------------------------------------------

def render_plan_text(plan_data: dict) -> str:
    lines = []
    backend = plan_data["backend"]
    lines.append(f"plan for {plan_data['name'] or 'pipeline'} on {backend}")
    lines.append("ports:")
    for p in plan_data["ports"]:
        lines.append(f"  {p['name']} (id {p['id']}, {p['role']}) -> {p['binding'] or 'unbound'}")
    lines.append("pipes:")
    for p in plan_data["pipes"]:
        flags = ", ".join(x for x in (p["type"], p["domain"], "root" if p["root"] else "") if x)
        lines.append(f"  {p['name']} [{flags}] match {', '.join(p['match'])}; fwd {p['fwd'] or 'per entry'}; "
                     f"miss {p['fwd_miss']}")
        for e in p["entries"]:
            extra = f" prio {e['priority']}" if "priority" in e else (f" weight {e['weight']}" if "weight" in e else "")
            acts = f" actions {', '.join(e['actions'])}" if e["actions"] else ""
            lines.append(f"    {e['name']}: {' '.join(e['match']) or '*'}{acts} -> {e['fwd']}{extra}")
    for s in plan_data["sessions"]:
        lines.append(f"session {s['id']}: " + ", ".join(f"{m['port']}#{m['instance']}" for m in s["members"]))
    for mp in plan_data["miss_policies"]:
        sets = ", ".join(f"{k} = {v}" for k, v in mp["set"].items())
        lines.append(f"learn {mp['name']}: misses of {mp['pipe']} -> entry in {mp['install']} match "
                     f"{', '.join(mp['match'])}; {sets}; fwd {mp['fwd']}; max {mp['max_flows']}; "
                     f"name {mp['entry_name']}")
    detail = plan_data[backend]
    if backend == "dpdk":
        lines.append(f"dpdk-testpmd commands (miss queue {detail['miss_queue']}):")
        lines += [f"  {c}" for c in detail["setup"]]
        lines += [f"  {r['command']}" for r in detail["rules"]]
        if detail["learned_rule_template"]:
            lines.append("rules the miss handler creates (<...> from the packet):")
            lines += [f"  {r['command']}" for r in detail["learned_rule_template"]]
        lines += [f"note: {n}" for n in detail["notes"]]
    elif backend == "doca":
        if detail.get("refused"):
            lines.append(f"doca refuses this pipeline: {detail['refused']}")
        else:
            lines.append(f"DOCA Flow pipe graph ({detail['api']}, mode {detail['mode']}, {detail['pipe_queues']} pipe "
                         f"queues, pipes on switch port {detail['switch_port']}):")
        for p in detail["pipes"]:
            root = " is_root" if p["is_root"] else ""
            match = ", ".join(p["match"] or {}) or "-"
            lines.append(f"  {p['name']} {p['type']}{root} {p['domain']} match [{match}] fwd {p['fwd']} "
                         f"fwd_miss {p['fwd_miss']}")
            for e in p["entries"]:
                m = ", ".join(f"{k}={v}" for k, v in e["match"].items())
                acts = f" actions {', '.join(f'{k}={v}' for k, v in e['actions'].items())}" if e["actions"] else ""
                lines.append(f"    entry {e['name']}: {m or '*'}{acts} -> {e['fwd'] or p['fwd']}")
        for lr in detail["learn"]:
            lines.append(f"  learn: miss of {lr['on_miss_of']} -> rss_{lr['on_miss_of']} -> entry in "
                         f"{lr['add_entry_to']} match {', '.join(lr['match'])} actions {lr['actions']}; {lr['then']}")
    else:
        lines.append(f"ebpf (pins under {detail['pin_dir']}):")
        for prog in detail["programs"]:
            lines.append(f"  program {prog['name']} ({prog['object']}) on {prog['hook']}: "
                         + ", ".join(f"{a['port']}={a['ifname']}" for a in prog["attach"]))
        for m in detail["maps"]:
            lines.append(f"  map {m['name']} ({m['type']}): {m['holds']}")
        for e in detail["entries"]:
            key = e.get("key") or {"keys": e.get("keys")}
            lines.append(f"  {e['map']}[{e['pipe']}] {e['entry']}: {key} -> {e['fwd']}"
                         + (f" {', '.join(e['actions'])}" if e["actions"] else ""))
        if detail["miss"]:
            lines.append(f"  miss: {detail['miss']['path']}; resubmit: {detail['miss']['resubmit']}")
    return "\n".join(lines)
