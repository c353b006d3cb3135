"""What a config becomes on each backend, without touching the system.

plan() returns plain JSON-able data (stable order); render_plan_text() prints
it. The backend part is not modelled here: each backend describes itself from a
dry instance (PF_INST_DRY) that the same compiled program is applied to as in
`run`. dpdk: the rte_flow rules its rule builder makes, as dpdk-testpmd `flow
create` commands, or why a pipe stays in the software pipes; doca: the DOCA Flow
pipe graph; ebpf: the BPF programs and attach points, the maps as libbpf opens
them, and the table entries as the loader encodes them.
"""
from __future__ import annotations

import json

from .config.fields import FIELDS, format_value
from .config.model import Actions, Config, Entry, Fwd, MatchValue, Pipe
from .controller import check_backend_name
from .errors import UsageError


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
    unknown = sorted(set(bindings) - {p.name for p in cfg.ports})
    if unknown:
        raise UsageError(f"--port {unknown[0]}: no such port in the config (ports: "
                         f"{', '.join(p.name for p in cfg.ports)})")
    result = _common(cfg, backend, bindings)
    result[backend] = {"doca": _doca, "dpdk": _dpdk, "ebpf": _ebpf}[backend](cfg, bindings)
    return result


# ---- the backends' own account, from a dry instance -------------------------

def plan_bindings(cfg: Config, backend: str, bindings: dict[str, str]) -> dict[str, str]:
    """What each port is bound to in the dry run. DOCA and DPDK ports are DPDK port ids (an explicit
    binding, else the config port's id); an unbound ebpf port is planned without an interface."""
    out = {}
    for p in cfg.ports:
        b = bindings.get(p.name) or p.ifname
        if backend == "doca":
            out[p.name] = b if b and str(b).split(",")[0].isdigit() else str(p.id)
        else:
            out[p.name] = b or ("" if backend == "ebpf" else str(p.id))
    return out


def dry_describe(cfg: Config, backend: str, bindings: dict[str, str]):
    """(the backend's description of what it would create for cfg, the compiled program)."""
    from .compiler import compile_program
    from .instance import Instance

    program = compile_program(cfg, plan_bindings(cfg, backend, bindings))
    with Instance(backend, cfg.name or "plan", dry=True, no_pin=backend == "doca") as inst:
        program.apply(inst)
        inst.start()
        data = json.loads(inst.describe())
    return data, program


def name_description(backend: str, data: dict, cfg: Config, entry_ids: dict[str, int]) -> dict:
    """A backend's description (plan or run) with config names next to its ids, in place."""
    entries = {eid: name for name, eid in entry_ids.items()}
    pipes = {i: name for name, i in cfg.pipe_ids().items()}
    ports = {p.id: p.name for p in cfg.ports}
    if backend == "dpdk":
        for p in data["pipes"]:
            p["name"] = pipes.get(p["id"])
            for r in p["rules"]:
                r["port_name"] = ports.get(r["port"])
                r["entry_name"] = entries.get(r["entry"]) if r["entry"] is not None else None
    elif backend == "ebpf":
        for prog in data["programs"]:
            for a in prog["attach"]:
                a["port_name"] = ports.get(a["port"])
        for e in data["entries"]:
            if "pipe" in e:
                e["pipe_name"] = pipes.get(e["pipe"])
            if "id" in e:
                e["entry"] = entries.get(e["id"])
            if "fwd" in e:
                kind, _, target = e["fwd"].partition(":")
                names = {"port": ports, "pipe": pipes}.get(kind, {})
                e["fwd_name"] = f"{kind}:{names.get(int(target), target)}" if target else kind
    return data


def _described(backend: str):
    def build(cfg: Config, bindings: dict[str, str]) -> dict:
        data, program = dry_describe(cfg, backend, bindings)
        return name_description(backend, data, cfg, program.entry_ids)
    return build


# ---- doca: DOCA Flow pipe graph -------------------------------------------
# The doca backend renders every DOCA Flow call it would make; the tests check that the simulator
# receives exactly this graph.

def doca_graph(cfg: Config, bindings: dict[str, str]) -> dict:
    """The DOCA Flow pipe graph the doca backend creates for cfg, from a dry run of the backend."""
    from .errors import PyflowError

    try:
        graph, program = dry_describe(cfg, "doca", bindings)
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


_dpdk = _described("dpdk")
_ebpf = _described("ebpf")


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
        lines.append(f"rte_flow ({detail['rte_flow']}): {detail['offload']}")
        for p in detail["pipes"]:
            if p["software"]:
                lines.append(f"  pipe {p['name']} (group {p['group']}): software pipes: {p['software']}")
                continue
            lines.append(f"  pipe {p['name']} (group {p['group']}): {len(p['rules'])} rte_flow rules")
            for r in p["rules"]:
                what = f"entry {r['entry_name']}" if r["entry"] is not None else "miss"
                lines.append(f"    {r['flow']}    # {what} on {r['port_name']}: {r['pmd']}")
        if plan_data["miss_policies"]:
            lines.append("  entries the miss handler learns get their rules from the same translation when installed")
    elif backend == "doca":
        if detail.get("refused"):
            lines.append(f"doca refuses this pipeline: {detail['refused']}")
        else:
            lines.append(f"DOCA Flow pipe graph ({detail['api']}, mode {detail['mode']}, {detail['pipe_queues']} pipe "
                         f"queues, " + (f"pipes on switch port {detail['switch_port']}):" if "switch_port" in detail
                                        else "a copy of the pipes on every port):"))
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
        lines.append(f"ebpf (pins under {detail['pin_dir']}):" if detail["pin_dir"] else "ebpf (nothing pinned):")
        for prog in detail["programs"]:
            where = ", ".join(f"{a['port_name']}={a['ifname'] or '<--port ' + a['port_name'] + '=IFNAME>'}"
                              + (f" ({a['mode']})" if a["mode"] else "") for a in prog["attach"])
            hook = prog["attach"][0]["hook"] if prog["attach"] else "-"
            lines.append(f"  program {prog['name']} ({prog['object']}, {prog['type']}) on {hook}: {where or 'no port'}")
        for m in detail["maps"]:
            lines.append(f"  map {m['name']} ({m['type']}): key {m['key_size']} B, value {m['value_size']} B, "
                         f"max_entries {m['max_entries']}")
        for e in detail["entries"]:
            lines.append("  " + _ebpf_entry_text(e))
    return "\n".join(lines)


def _ebpf_entry_text(e: dict) -> str:
    from .native import lib

    if e["map"] == "pipes":
        kind = {lib.PF_PIPE_BASIC: "basic", lib.PF_PIPE_CONTROL: "control", lib.PF_PIPE_LPM: "lpm",
                lib.PF_PIPE_HASH: "hash"}.get(e["type"], e["type"])
        return f"pipes[{e['pipe']}] = pipe {e['pipe_name']} ({kind})"
    if e["map"] == "sessions":
        return f"sessions[{e['session']}] = {e['members']} members"
    if e["map"] == "lpm":
        where = f"pipe {e['pipe_name']} /{e['prefixlen']}"
    elif e["map"] == "hash_buckets":
        where = f"pipe {e['pipe_name']} buckets {e['keys']}"
    else:   # an exact/control table: port_entries, entries_c1, entries_c or entries
        where = f"pipe {e['pipe_name']} mask {e['mask_idx']}"
    acts = f", actions {e['actions']}" if e["actions"] != "0x0" else ""
    return f"{e['map']}[{where}] = entry {e['entry'] or e['id']} (id {e['id']}) -> {e['fwd_name']}{acts}"
