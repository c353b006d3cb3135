"""Compile a validated Config into the structs of the C API (pure data, no privileges).

Pipe ids are positions in the config; port and session ids are the config's.
Entry ids are given by the backend when an entry is added (Program.apply
records them). Encoding conventions handed to the backends:

* control pipes: one mask slot per distinct entry mask, in order of first use;
* lpm pipes: one mask (the address field); prefixlen is the address prefix
  length (the backend adds PF_LPM_PREFIX_BASE);
* hash pipes: the mask lists the fields the flow hash covers; each entry owns
  the buckets [mask_idx, mask_idx + prefixlen) of the pipe's nbuckets, sized
  by its weight.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .native import ffi, lib
from .config.fields import FIELDS, LPM_FIELDS, Field, from_bytes, to_bytes
from .config.model import Actions, Config, Entry, Fwd, MissPolicy, Pipe, hash_buckets
from .counters import render_entry_name
from .errors import ConfigError

PIPE_TYPES = {"basic": lib.PF_PIPE_BASIC, "control": lib.PF_PIPE_CONTROL, "lpm": lib.PF_PIPE_LPM,
              "hash": lib.PF_PIPE_HASH}
DOMAINS = {"ingress": lib.PF_DOMAIN_INGRESS, "egress": lib.PF_DOMAIN_EGRESS}
FWD_TYPES = {"port": lib.PF_FWD_PORT, "pipe": lib.PF_FWD_PIPE, "miss": lib.PF_FWD_MISS, "drop": lib.PF_FWD_DROP,
             "session": lib.PF_FWD_SESSION, "kernel": lib.PF_FWD_KERNEL}
EXPR_OPS = {"const": lib.PF_EXPR_CONST, "field": lib.PF_EXPR_FIELD, "field_add": lib.PF_EXPR_FIELD_ADD,
            "pool": lib.PF_EXPR_POOL}


def _write(cdata, ctype: str, attr: str, data: bytes) -> None:
    off = ffi.offsetof(ctype, attr)
    ffi.buffer(cdata)[off:off + len(data)] = data


def _read(cdata, ctype: str, attr: str, size: int) -> bytes:
    off = ffi.offsetof(ctype, attr)
    return ffi.buffer(cdata)[off:off + size]


def struct_bytes(cdata) -> bytes:
    if ffi.typeof(cdata).kind == "struct":
        cdata = ffi.addressof(cdata)
    return bytes(ffi.buffer(cdata))


def fields_struct(values: dict[str, int]):
    """A struct pf_fields with the given field values (ints, in the model's normalised form)."""
    s = ffi.new("struct pf_fields *")
    for name, value in values.items():
        f = FIELDS[name]
        _write(s, "struct pf_fields", f.attr, to_bytes(f, value))
    return s


def decode_fields(s, names) -> dict[str, int]:
    """Values of the named fields of a struct pf_fields (cdata pointer or bytes)."""
    buf = s if isinstance(s, (bytes, bytearray)) else bytes(ffi.buffer(s))
    out = {}
    for name in names:
        f = FIELDS[name]
        off = ffi.offsetof("struct pf_fields", f.attr)
        out[name] = from_bytes(f, buf[off:off + f.size])
    return out


@dataclass
class PortProgram:
    id: int
    name: str
    binding: str | None
    value: object           # struct pf_port *
    path: str


@dataclass
class PipeProgram:
    id: int
    name: str
    type: str
    domain: str
    root: bool
    value: object           # struct pf_pipe *
    masks: object           # struct pf_fields[nmasks]
    nmasks: int
    match: list[str]
    path: str

    def mask_bytes(self, idx: int) -> bytes:
        return bytes(ffi.buffer(self.masks))[idx * ffi.sizeof("struct pf_fields"):
                                             (idx + 1) * ffi.sizeof("struct pf_fields")]


@dataclass
class EntryProgram:
    name: str
    pipe_id: int
    pipe_name: str
    mask_idx: int
    prefixlen: int
    match: object           # struct pf_fields *
    entry: object           # struct pf_entry *
    path: str
    fwd: str                # as written (or the pipe's default), for display

    @property
    def match_bytes(self) -> bytes:
        return struct_bytes(self.match)

    @property
    def entry_bytes(self) -> bytes:
        return struct_bytes(self.entry)


@dataclass
class SessionProgram:
    id: int
    name: str | None
    value: object           # struct pf_session *
    path: str


@dataclass
class LearnProgram:
    name: str
    from_pipe: str
    to_pipe: str
    value: object           # struct pf_learn *
    entry_name: str
    match: list[str]
    path: str


@dataclass
class Program:
    config: Config
    ports: list[PortProgram]
    pipes: list[PipeProgram]
    entries: list[EntryProgram]
    sessions: list[SessionProgram]
    learns: list[LearnProgram]
    root_pipe: int
    entry_ids: dict[str, int] = field(default_factory=dict)   # filled by apply()

    def pipe(self, name: str) -> PipeProgram:
        return next(p for p in self.pipes if p.name == name)

    def entry(self, name: str) -> EntryProgram:
        return next(e for e in self.entries if e.name == name)

    def names(self) -> dict:
        """Name tables for counter printing: pipes, ports, sessions, entries (after apply), learned templates."""
        return {
            "pipes": {p.id: p.name for p in self.pipes},
            "ports": {p.id: p.name for p in self.ports},
            "sessions": {s.id: s.name or str(s.id) for s in self.sessions},
            "entries": {eid: name for name, eid in self.entry_ids.items()},
            "entry_pipes": {e.name: e.pipe_name for e in self.entries},
            "learned": {lp.to_pipe: {"policy": lp.name, "from_pipe": lp.from_pipe, "template": lp.entry_name,
                                     "match": list(lp.match)} for lp in self.learns},
        }

    def learned_entry_name(self, pipe_id: int, match) -> str | None:
        """Name of an entry learned into pipe_id, from its match struct (pf_fields cdata or bytes)."""
        pipe = next((p for p in self.pipes if p.id == pipe_id), None)
        lp = next((lp for lp in self.learns if pipe and lp.to_pipe == pipe.name), None)
        if lp is None:
            return None
        return render_entry_name(lp.entry_name, decode_fields(match, lp.match))

    def apply(self, instance) -> dict[str, int]:
        """Program an opened instance; returns entry name -> id. Checks bindings before touching it."""
        backend = getattr(instance, "backend", None)
        bindings = {}
        for port in self.ports:
            binding = port.binding
            if binding is None and backend in ("dpdk", "doca"):
                binding = str(port.id)
            if binding is None:
                raise ConfigError(port.path, f"port {port.name!r} is not bound to an interface: set \"ifname\" "
                                  f"or pass --port {port.name}=IFNAME")
            bindings[port.id] = binding
        for port in self.ports:
            instance.port_set(port.id, bindings[port.id], port.value)
        for pipe in self.pipes:
            instance.pipe_name_set(pipe.id, pipe.name)
            instance.pipe_set(pipe.id, pipe.value, pipe.masks, pipe.nmasks)
        instance.root_set(self.root_pipe)
        for session in self.sessions:
            instance.session_set(session.id, session.value)
        if self.config.mpls_tc_map:
            instance.dscp_tc_set(self.config.mpls_tc_map)
        added: dict[str, int] = {}
        try:
            for e in self.entries:
                # a fresh copy: the backend writes the id into it
                entry = ffi.new("struct pf_entry *", e.entry[0])
                added[e.name] = instance.entry_add(e.pipe_id, e.mask_idx, e.prefixlen, e.match, entry)
            for lp in self.learns:
                instance.learn_set(lp.value)
        except Exception:
            for eid in added.values():
                try:
                    instance.entry_del(eid)
                except Exception:  # the first error is the one to report
                    pass
            raise
        self.entry_ids = added
        return dict(added)


# ---- compilation ----------------------------------------------------------

def _set_fwd(dst, fwd: Fwd | None, pipe_ids: dict[str, int], port_ids: dict[str, int]) -> None:
    if fwd is None:
        dst.type = lib.PF_FWD_DEFAULT
        dst.target = 0
        return
    dst.type = FWD_TYPES[fwd.kind]
    if fwd.kind == "port":
        dst.target = port_ids[fwd.target]
    elif fwd.kind == "pipe":
        dst.target = pipe_ids[fwd.target]
    elif fwd.kind == "session":
        dst.target = fwd.target
    else:
        dst.target = 0


def _set_action_field(act, f: Field, value: int) -> None:
    _write(act, "struct pf_actions", f.set_attr, to_bytes(f, value))
    act.flags |= getattr(lib, f.set_flag)


def actions_struct(a: Actions, extra_labels: list[int] | None = None):
    """struct pf_actions for one entry's action values."""
    act = ffi.new("struct pf_actions *")
    for name, value in a.sets.items():
        _set_action_field(act, FIELDS[name], value)
    if a.dec_ttl:
        act.flags |= lib.PF_ACT_DEC_TTL
    if a.pop_vlan:
        act.flags |= lib.PF_ACT_POP_VLAN
    if a.push_vlan is not None:
        act.flags |= lib.PF_ACT_PUSH_VLAN
        act.vlan_id = a.push_vlan
    labels = list(extra_labels or []) + list(a.push_mpls)
    if labels:
        act.flags |= lib.PF_ACT_PUSH_MPLS
        act.mpls_count = len(labels)
        tc = a.mpls_tc if isinstance(a.mpls_tc, int) and not isinstance(a.mpls_tc, bool) else 0
        for i, label in enumerate(labels):
            act.mpls_labels[i] = label | (tc << 20)
        act.mpls_ttl = a.mpls_ttl
        if a.mpls_tc == "dscp":
            act.flags |= lib.PF_ACT_MPLS_TC_DSCP
    if a.pop_mpls:
        act.flags |= lib.PF_ACT_POP_MPLS
        act.mpls_pop_count = a.pop_mpls
    if a.clone is not None:
        act.flags |= lib.PF_ACT_CLONE
        act.session = a.clone
    if a.drop_pct is not None:
        act.flags |= lib.PF_ACT_DROP_PCT
        act.drop_pct = a.drop_pct
    if a.count:
        act.flags |= lib.PF_ACT_COUNT
    return act


def session_struct(members: list[tuple[int, int, int, int]]):
    """struct pf_session from (port id, instance, class_of_service, truncate) per member."""
    value = ffi.new("struct pf_session *")
    value.nmembers = len(members)
    for i, (port, instance, class_of_service, truncate) in enumerate(members):
        m = value.members[i]
        m.port, m.instance, m.class_of_service, m.truncate, m.in_use = port, instance, class_of_service, truncate, 1
    return value


def _pipe_masks(pipe: Pipe) -> list[dict[str, int]]:
    full = {m.name: m.mask for m in pipe.match}
    if pipe.type != "control" or not pipe.entries:
        return [full]
    masks: list[dict[str, int]] = []
    for e in pipe.entries:
        mask = {name: e.match[name].mask for name in pipe.match_names() if name in e.match}
        if mask not in masks:
            masks.append(mask)
    return masks


def _fwd_text(entry: Entry, pipe: Pipe) -> str:
    if entry.fwd or pipe.fwd:
        return str(entry.fwd or pipe.fwd)
    return "out" if pipe.domain == "egress" else "drop"


def compile_program(cfg: Config, bindings: dict[str, str] | None = None) -> Program:
    bindings = dict(bindings or {})
    port_ids = cfg.port_ids()
    for name in bindings:
        if name not in port_ids:
            from .config.errors_util import suggest
            raise ConfigError(f"--port {name}", f"unknown port {name!r}{suggest(name, port_ids)}; ports are: "
                              f"{', '.join(port_ids)}")
    pipe_ids = cfg.pipe_ids()

    ports = []
    for p in cfg.ports:
        value = ffi.new("struct pf_port *")
        value.flags = lib.PF_PORT_IN_USE
        if p.egress_pipe is not None:
            value.flags |= lib.PF_PORT_EGRESS_PIPE
            value.egress_pipe = pipe_ids[p.egress_pipe]
        ports.append(PortProgram(p.id, p.name, bindings.get(p.name, p.ifname), value, p.path))

    pipes, entries = [], []
    hash_slot = 0
    for pid, pipe in enumerate(cfg.pipes):
        value = ffi.new("struct pf_pipe *")
        value.type = PIPE_TYPES[pipe.type]
        value.domain = DOMAINS[pipe.domain]
        value.flags = lib.PF_PIPE_IN_USE | (lib.PF_PIPE_COUNTED if pipe.counters else 0) | \
            (lib.PF_PIPE_ROOT if pipe.root else 0)
        # an egress pipe without fwd lets frames leave where ingress sent them
        _set_fwd(value.fwd, pipe.fwd or (None if pipe.domain == "egress" else Fwd("drop")), pipe_ids, port_ids)
        _set_fwd(value.fwd_miss, pipe.fwd_miss, pipe_ids, port_ids)
        if pipe.type == "lpm":
            value.lpm_field = getattr(lib, LPM_FIELDS[pipe.lpm_field])
        masks = _pipe_masks(pipe)
        value.nmasks = len(masks)
        mask_array = ffi.new("struct pf_fields[]", len(masks))
        for i, mask in enumerate(masks):
            ffi.buffer(mask_array)[i * ffi.sizeof("struct pf_fields"):(i + 1) * ffi.sizeof("struct pf_fields")] = \
                ffi.buffer(fields_struct(mask))
        buckets = []
        if pipe.type == "hash":
            value.hash_slot = hash_slot
            hash_slot += 1
            buckets = hash_buckets([e.weight for e in pipe.entries])
            value.nbuckets = sum(buckets)
        pipes.append(PipeProgram(pid, pipe.name, pipe.type, pipe.domain, pipe.root, value, mask_array, len(masks),
                                 pipe.match_names(), pipe.path))

        first_bucket = 0
        for k, e in enumerate(pipe.entries):
            mask_idx, prefixlen = 0, 0
            if pipe.type == "control":
                mask = {n: e.match[n].mask for n in pipe.match_names() if n in e.match}
                mask_idx = masks.index(mask)
            elif pipe.type == "lpm":
                prefixlen = e.match[pipe.lpm_field].prefixlen
            elif pipe.type == "hash":
                mask_idx, prefixlen = first_bucket, buckets[k]
                first_bucket += buckets[k]
            match = fields_struct({n: mv.value & mv.mask for n, mv in e.match.items()})
            entry = ffi.new("struct pf_entry *")
            entry.priority = e.priority if pipe.type == "control" else 0
            entry.flags = lib.PF_ENTRY_COUNTED if (pipe.counters or e.actions.count) else 0
            _set_fwd(entry.fwd, e.fwd, pipe_ids, port_ids)
            entry.act = actions_struct(e.actions)[0]
            entries.append(EntryProgram(e.name, pid, pipe.name, mask_idx, prefixlen, match, entry, e.path,
                                        _fwd_text(e, pipe)))

    sessions = [SessionProgram(s.id, s.name, session_struct(
        [(port_ids[m.port], m.instance, m.class_of_service, m.truncate) for m in s.members]), s.path)
        for s in cfg.sessions]

    learns = [_compile_policy(cfg, mp, pipe_ids, port_ids) for mp in cfg.miss_policies]
    return Program(cfg, ports, pipes, entries, sessions, learns, pipe_ids[cfg.root_pipe.name])


def _compile_policy(cfg: Config, mp: MissPolicy, pipe_ids, port_ids) -> LearnProgram:
    target = cfg.pipe(mp.install)
    value = ffi.new("struct pf_learn *")
    value.from_pipe = pipe_ids[mp.pipe]
    value.to_pipe = pipe_ids[mp.install]
    value.max_flows = mp.max_flows
    value.idle_timeout_ms = int(round(mp.idle_timeout * 1000))
    value.rate_limit_pps = mp.rate_limit
    value.burst = mp.burst
    value.entry_flags = lib.PF_ENTRY_LEARNED | (lib.PF_ENTRY_COUNTED if target.counters else 0)
    _set_fwd(value.fwd, mp.fwd, pipe_ids, port_ids)

    const = Actions(**{k: v for k, v in vars(mp.actions).items()})
    const.sets = dict(mp.actions.sets)
    extra_labels = []
    computed = []
    for key, expr in mp.sets.items():
        if expr.op == "const":
            if key == "mpls.push":
                extra_labels.append(expr.value)
            else:
                const.sets[key] = expr.value
        else:
            computed.append((key, expr))
    if any(k == "mpls.push" for k, _ in computed):
        extra_labels.insert(0, 0)   # the learner writes label 0 from the expression
    value.base_actions = actions_struct(const, extra_labels)[0]

    value.nsets = len(computed)
    for i, (key, expr) in enumerate(computed):
        s = value.sets[i]
        if key == "mpls.push":
            s.action = lib.PF_ACT_PUSH_MPLS
            data = to_bytes(FIELDS["mpls.label"], expr.value)
        else:
            target_field = FIELDS[key]
            s.action = getattr(lib, target_field.set_flag)
            data = to_bytes(target_field, expr.value)
        s.op = EXPR_OPS[expr.op]
        s.src_field = getattr(lib, FIELDS[expr.src_field].field_id) if expr.src_field else 0
        ffi.buffer(s.value)[0:len(data)] = data
        s.pool_size = expr.pool_size
    return LearnProgram(mp.name, mp.pipe, mp.install, value, mp.entry_name, list(mp.match), mp.path)
