"""Semantic checks beyond the schema, building the model as they go.

The first problem found (in document order within each stage) is raised as a
ConfigError carrying its JSON path; nothing is half-built.
"""
from __future__ import annotations

import re

from ..native import lib
from ..errors import ConfigError
from .errors_util import join_path, suggest
from .fields import (FIELDS, LPM_FIELDS, MPEGTS_FRAMES, SETTABLE, Field, is_prefix, parse_prefix,
                     parse_scalar, prefix_mask)
from .model import (Actions, Config, Entry, Fwd, MatchField, MatchValue, MissPolicy, Pipe, Port, Session,
                    SessionMember, SetExpr)

# The datapath's limits, from bpf/include/pyflow/shared.h and pyflow.h through the build (one source).
MAX_PIPE_DEPTH = lib.PF_MAX_PIPE_DEPTH
MAX_MASKS = lib.PF_MAX_MASKS
MAX_HASH_BUCKETS = lib.PF_HASH_BUCKETS
MAX_HASH_PIPES = lib.PF_MAX_HASH_PIPES
MAX_LEARN_SETS = lib.PF_LEARN_MAX_SETS
MPLS_MAX = lib.PF_MPLS_MAX
SHARED_STORAGE = {"ipv4.proto": "ipv6.next", "ipv4.ttl": "ipv6.hop"}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_EXPR = re.compile(r"^\s*([a-z0-9]+\.[a-z_]+)\s*(?:\+\s*(\S+))?\s*$")


def _fail(path: str, message: str):
    raise ConfigError(path, message)


def _check_allowed(pipe: Pipe, action: str, path: str):
    if action not in pipe.actions:
        _fail(path, f"pipe {pipe.name!r} does not allow action {action!r} "
              f"(allowed: {', '.join(pipe.actions) or 'none'}); add it to {pipe.path}.actions")


def parse_fwd(text: str) -> Fwd:
    if text in ("miss", "drop", "kernel"):
        return Fwd(text)
    kind, _, target = text.partition(":")
    if kind in ("session", "group"):
        return Fwd("session", int(target))
    return Fwd(kind, target)


class _Builder:
    def __init__(self, raw: dict):
        self.raw = raw
        self.ports: list[Port] = []
        self.port_ids: dict[str, int] = {}
        self.pipes: list[Pipe] = []
        self.pipe_by_name: dict[str, Pipe] = {}
        self.sessions: list[Session] = []
        self.session_ids: set[int] = set()
        self.entry_names: dict[str, str] = {}     # entry name -> path
        self.fwd_refs: list[tuple[Fwd, str, Pipe | None]] = []   # (fwd, path, pipe it leaves)
        self.clone_refs: list[tuple[int, str]] = []

    # ---- ports -------------------------------------------------------------
    def build_ports(self):
        names: dict[str, str] = {}
        ids: dict[int, str] = {}
        for i, rp in enumerate(self.raw["ports"]):
            path = f"ports[{i}]"
            name = rp["name"]
            if name in names:
                _fail(f"{path}.name", f"duplicate port name {name!r} (also {names[name]})")
            if rp["id"] in ids:
                _fail(f"{path}.id", f"duplicate port id {rp['id']} (also {ids[rp['id']]})")
            names[name], ids[rp["id"]] = path, path
            self.ports.append(Port(name, rp["id"], rp.get("role", "port"), rp.get("ifname"),
                                   rp.get("egress_pipe"), path))
        self.port_ids = {p.name: p.id for p in self.ports}

    # ---- values ------------------------------------------------------------
    def parse_value(self, field: Field, raw, path: str) -> int:
        try:
            return parse_scalar(field, raw, self.port_ids)
        except ValueError as exc:
            _fail(path, str(exc))

    def parse_match_value(self, pipe: Pipe, mf: MatchField, raw, path: str) -> MatchValue:
        field = mf.field
        if isinstance(raw, dict):
            if pipe.type != "control":
                _fail(path, f"{pipe.type} pipes match exact values; masked values need a control pipe")
            value = self.parse_value(field, raw["value"], join_path(path, "value"))
            mask = self.parse_value(field, raw["mask"], join_path(path, "mask"))
            if value & ~mask:
                _fail(path, f"value has bits outside its mask {raw['mask']!r}")
            return MatchValue(value, mask & mf.mask)
        if is_prefix(raw):
            if not field.is_address:
                _fail(path, f"{field.name} takes no prefix; expected a single value")
            try:
                value, plen = parse_prefix(field, raw)
            except ValueError as exc:
                _fail(path, str(exc))
            if pipe.type == "basic" and plen != field.bits:
                _fail(path, f"basic pipes match exact values; prefix {raw!r} needs a control or lpm pipe")
            return MatchValue(value, prefix_mask(field, plen) & mf.mask, plen)
        value = self.parse_value(field, raw, path)
        if value & ~mf.mask:
            _fail(path, f"value {raw!r} has bits outside the pipe's mask for {field.name}")
        plen = field.bits if pipe.type == "lpm" else None
        return MatchValue(value, mf.mask, plen)

    def parse_actions(self, raw: dict, path: str) -> Actions:
        act = Actions()
        for key, val in raw.items():
            kpath = join_path(path, key)
            if key in SETTABLE:
                act.sets[key] = self.parse_value(FIELDS[key], val, kpath)
            elif key == "dec_ttl":
                act.dec_ttl = val
            elif key == "pop_vlan":
                act.pop_vlan = val
            elif key == "count":
                act.count = val
            elif key == "push_vlan":
                act.push_vlan = val
            elif key == "push_mpls":
                if isinstance(val, dict):
                    act.push_mpls, act.mpls_ttl = list(val["labels"]), val.get("ttl", 0)
                    act.mpls_tc = val.get("tc")
                else:
                    act.push_mpls = list(val) if isinstance(val, list) else [val]
            elif key == "pop_mpls":
                act.pop_mpls = (1 if val else 0) if isinstance(val, bool) else val
            elif key == "clone":
                act.clone = val
                self.clone_refs.append((val, kpath))
            elif key == "drop_pct":
                act.drop_pct = val["percent"] if isinstance(val, dict) else val
        if act.push_vlan is not None and "vlan.id" in act.sets:
            _fail(join_path(path, "push_vlan"), "push_vlan and vlan.id both set the VLAN id; use one")
        return act

    # ---- pipes -------------------------------------------------------------
    def build_pipes(self):
        for i, rp in enumerate(self.raw["pipes"]):
            path = f"pipes[{i}]"
            if rp["name"] in self.pipe_by_name:
                _fail(f"{path}.name", f"duplicate pipe name {rp['name']!r} (also {self.pipe_by_name[rp['name']].path})")
            pipe = Pipe(rp["name"], rp["type"], rp.get("domain", "ingress"), rp.get("root", False), [],
                        list(rp.get("actions", [])), None, Fwd("drop"), rp.get("counters", True),
                        rp.get("max_entries"), float(rp.get("idle_timeout", 0)), [], path)
            self.pipe_by_name[pipe.name] = pipe
            self.pipes.append(pipe)
            self.build_match(pipe, rp)
            if "fwd" in rp:
                pipe.fwd = parse_fwd(rp["fwd"])
                self.fwd_refs.append((pipe.fwd, f"{path}.fwd", pipe))
            if "fwd_miss" in rp:
                pipe.fwd_miss = parse_fwd(rp["fwd_miss"])
                self.fwd_refs.append((pipe.fwd_miss, f"{path}.fwd_miss", pipe))
            for j, re_ in enumerate(rp.get("entries", [])):
                pipe.entries.append(self.build_entry(pipe, re_, f"{path}.entries[{j}]", j))
            self.check_pipe_limits(pipe)
        self.check_root()

    def build_match(self, pipe: Pipe, rp: dict):
        seen: dict[str, int] = {}
        for k, item in enumerate(rp["match"]):
            mpath = f"{pipe.path}.match[{k}]"
            name = item if isinstance(item, str) else item["field"]
            field = FIELDS[name]
            if name in seen:
                _fail(mpath, f"{name} is matched twice (also match[{seen[name]}])")
            twin = SHARED_STORAGE.get(name) or next((a for a, b in SHARED_STORAGE.items() if b == name), None)
            if twin in seen:
                _fail(mpath, f"{name} and {twin} are the same header field; match one of them")
            seen[name] = k
            mask = field.full_mask
            if isinstance(item, dict) and "mask" in item:
                mask = self.parse_value(field, item["mask"], f"{mpath}.mask")
                if mask == 0:
                    _fail(f"{mpath}.mask", "a zero mask matches nothing; drop the field instead")
            pipe.match.append(MatchField(name, mask))
        names = pipe.match_names()
        if pipe.type == "lpm":
            if len(names) != 1 or names[0] not in LPM_FIELDS:
                _fail(f"{pipe.path}.match", "lpm pipes match exactly one of " + ", ".join(LPM_FIELDS) +
                      f"; got {names}")
            if pipe.match[0].mask != pipe.match[0].field.full_mask:
                _fail(f"{pipe.path}.match[0].mask", "lpm pipes take the prefix length from each entry, not a mask")
        elif pipe.type == "hash":
            if not names:
                _fail(f"{pipe.path}.match", "hash pipes need the fields the flow hash covers, e.g. "
                      "[\"ipv4.src\", \"ipv4.dst\", \"ipv4.proto\", \"l4.sport\", \"l4.dport\"]")
        elif not names:
            _fail(f"{pipe.path}.match", f"{pipe.type} pipes need at least one field to match")

    def build_entry(self, pipe: Pipe, re_: dict, path: str, index: int) -> Entry:
        name = re_["name"]
        if name in self.entry_names:
            _fail(f"{path}.name", f"duplicate entry name {name!r} (also {self.entry_names[name]})")
        self.entry_names[name] = path
        by_name = {m.name: m for m in pipe.match}
        match: dict[str, MatchValue] = {}
        raw_match = re_.get("match", {})
        if pipe.type == "hash" and raw_match:
            _fail(f"{path}.match", "hash pipe entries are buckets chosen by the flow hash; they take no match")
        for key, val in raw_match.items():
            kpath = join_path(f"{path}.match", key)
            if key not in by_name:
                _fail(kpath, f"pipe {pipe.name!r} does not match on {key}{suggest(key, by_name)}; "
                      f"it matches {', '.join(by_name)}")
            match[key] = self.parse_match_value(pipe, by_name[key], val, kpath)
        actions = self.parse_actions(re_.get("actions", {}), f"{path}.actions")
        for used in actions.used():
            _check_allowed(pipe, used, join_path(f"{path}.actions", used))
        frame = re_.get("actions", {}).get("drop_pct")
        if isinstance(frame, dict) and "frame" in frame:
            fpath = f"{path}.actions.drop_pct.frame"
            if "mpegts.frame" not in by_name:
                _fail(fpath, f"dropping one frame class needs pipe {pipe.name!r} to match on mpegts.frame")
            value = MPEGTS_FRAMES[frame["frame"]]
            if "mpegts.frame" in match and match["mpegts.frame"].value != value:
                _fail(fpath, f"frame class {frame['frame']!r} contradicts the entry's mpegts.frame match")
            match["mpegts.frame"] = MatchValue(value, by_name["mpegts.frame"].mask)
        if pipe.type in ("basic", "lpm"):
            missing = [m for m in by_name if m not in match]
            if missing:
                _fail(f"{path}.match", f"missing a value for {missing[0]} (a {pipe.type} pipe matches every field "
                      f"it lists: {', '.join(by_name)})")
        fwd = None
        if "fwd" in re_:
            fwd = parse_fwd(re_["fwd"])
            self.fwd_refs.append((fwd, f"{path}.fwd", pipe))
        elif pipe.fwd is None and pipe.domain != "egress":
            # an egress pipe's entry without fwd lets the frame leave where ingress sent it
            _fail(path, f"entry {name!r} has no fwd and pipe {pipe.name!r} has no default fwd")
        if "priority" in re_ and pipe.type != "control":
            _fail(f"{path}.priority", f"priority only orders entries of control pipes; {pipe.name!r} is {pipe.type}")
        if "weight" in re_ and pipe.type != "hash":
            _fail(f"{path}.weight", f"weight only applies to hash pipes; {pipe.name!r} is {pipe.type}")
        return Entry(name, match, actions, fwd, re_.get("priority", index), re_.get("weight", 1), path)

    def check_pipe_limits(self, pipe: Pipe):
        n = len(pipe.entries)
        if pipe.max_entries is not None and n > pipe.max_entries:
            _fail(f"{pipe.path}.entries", f"{n} entries but max_entries is {pipe.max_entries}")
        if pipe.type == "hash":
            weights = sum(e.weight for e in pipe.entries)
            if n > MAX_HASH_BUCKETS:
                _fail(f"{pipe.path}.entries", f"{n} entries but a hash pipe holds at most {MAX_HASH_BUCKETS}")
            if n and weights == 0:
                _fail(f"{pipe.path}.entries", "hash pipe weights add up to 0")
            if sum(1 for p in self.pipes if p.type == "hash") > MAX_HASH_PIPES:
                _fail(f"{pipe.path}.type", f"at most {MAX_HASH_PIPES} hash pipes per config")
        if pipe.type == "control":
            masks = []
            for e in pipe.entries:
                key = tuple(e.match[m].mask if m in e.match else 0 for m in pipe.match_names())
                if key not in masks:
                    masks.append(key)
                if len(masks) > MAX_MASKS:
                    _fail(e.path + ".match", f"control pipe {pipe.name!r} uses more than {MAX_MASKS} distinct masks")
        seen: dict[tuple, str] = {}
        if pipe.type != "hash":
            for e in pipe.entries:
                key = tuple(sorted((k, v.value, v.mask) for k, v in e.match.items()))
                if key in seen:
                    _fail(e.path + ".match", f"same match as {seen[key]}; the second entry would never be hit")
                seen[key] = e.path

    def check_root(self):
        roots = [p for p in self.pipes if p.root]
        if not roots:
            _fail("pipes", "no root pipe: mark exactly one pipe with \"root\": true")
        if len(roots) > 1:
            _fail(f"{roots[1].path}.root", f"only one root pipe is allowed; {roots[0].path} ({roots[0].name!r}) is root")
        if roots[0].domain != "ingress":
            _fail(f"{roots[0].path}.domain", "the root pipe receives frames from the ports; it must be in the ingress domain")

    # ---- sessions ----------------------------------------------------------
    def build_sessions(self):
        names: dict[str, str] = {}
        ids: dict[int, str] = {}
        for i, rs in enumerate(self.raw.get("sessions", [])):
            path = f"sessions[{i}]"
            if rs["id"] in ids:
                _fail(f"{path}.id", f"duplicate session id {rs['id']} (also {ids[rs['id']]})")
            ids[rs["id"]] = path
            if "name" in rs:
                if rs["name"] in names:
                    _fail(f"{path}.name", f"duplicate session name {rs['name']!r} (also {names[rs['name']]})")
                names[rs["name"]] = path
            members = []
            seen = set()
            for k, rm in enumerate(rs["members"]):
                mpath = f"{path}.members[{k}]"
                self.check_port(rm["port"], f"{mpath}.port")
                key = (rm["port"], rm.get("instance", 0))
                if key in seen:
                    _fail(mpath, f"port {rm['port']!r} instance {key[1]} is already a member of this session")
                seen.add(key)
                members.append(SessionMember(rm["port"], rm.get("instance", 0), rm.get("class_of_service", 0),
                                             rm.get("truncate", 0)))
            self.sessions.append(Session(rs["id"], rs.get("name"), members, path))
        self.session_ids = set(ids)

    # ---- references --------------------------------------------------------
    def check_port(self, name: str, path: str):
        if name not in self.port_ids:
            _fail(path, f"unknown port {name!r}{suggest(name, self.port_ids)}; ports are: {', '.join(self.port_ids)}")

    def check_pipe_name(self, name: str, path: str):
        if name not in self.pipe_by_name:
            _fail(path, f"unknown pipe {name!r}{suggest(name, self.pipe_by_name)}; pipes are: "
                  f"{', '.join(self.pipe_by_name)}")

    def check_session(self, sid: int, path: str):
        if sid not in self.session_ids:
            known = ", ".join(map(str, sorted(self.session_ids))) or "none defined"
            _fail(path, f"unknown session {sid} (sessions: {known})")

    def check_refs(self):
        for fwd, path, _ in self.fwd_refs:
            if fwd.kind == "port":
                self.check_port(fwd.target, path)
            elif fwd.kind == "pipe":
                self.check_pipe_name(fwd.target, path)
                if self.pipe_by_name[fwd.target].root:
                    _fail(path, f"cannot forward to the root pipe {fwd.target!r}; frames enter it from the ports")
            elif fwd.kind == "session":
                self.check_session(fwd.target, path)
        for sid, path in self.clone_refs:
            self.check_session(sid, path)
        for port in self.ports:
            if port.egress_pipe is not None:
                path = f"{port.path}.egress_pipe"
                self.check_pipe_name(port.egress_pipe, path)
                if self.pipe_by_name[port.egress_pipe].domain != "egress":
                    _fail(path, f"pipe {port.egress_pipe!r} is in the ingress domain; a port's egress pipe must "
                          "have \"domain\": \"egress\"")

    def check_graph(self):
        """No forwarding loops and no chain longer than the datapath follows."""
        edges: dict[str, list[tuple[str, str]]] = {p.name: [] for p in self.pipes}
        for fwd, path, pipe in self.fwd_refs:
            if fwd.kind == "pipe" and pipe is not None:
                edges[pipe.name].append((fwd.target, path))
        state: dict[str, int] = {}
        depth: dict[str, int] = {}

        def visit(name: str, stack: list[str]) -> int:
            if state.get(name) == 2:
                return depth[name]
            state[name] = 1
            longest = 1
            for target, path in edges[name]:
                if state.get(target) == 1:
                    loop = stack[stack.index(target):] + [name, target] if target in stack else [name, target]
                    _fail(path, "forwarding loop: " + " -> ".join(loop))
                longest = max(longest, 1 + visit(target, stack + [name]))
            state[name] = 2
            depth[name] = longest
            return longest

        for pipe in self.pipes:
            d = visit(pipe.name, [])
            if d > MAX_PIPE_DEPTH:
                _fail(pipe.path, f"a chain of {d} pipes starts at {pipe.name!r}; the datapath follows at most "
                      f"{MAX_PIPE_DEPTH}")

    # ---- miss policies -----------------------------------------------------
    def build_policies(self) -> list[MissPolicy]:
        policies: list[MissPolicy] = []
        names: dict[str, str] = {}
        by_pipe: dict[str, str] = {}
        timeouts: dict[str, tuple[float, str]] = {}    # install pipe -> (idle timeout, where it was set)
        for i, rp in enumerate(self.raw.get("miss_policies", [])):
            path = f"miss_policies[{i}]"
            if rp["name"] in names:
                _fail(f"{path}.name", f"duplicate miss policy name {rp['name']!r} (also {names[rp['name']]})")
            names[rp["name"]] = path
            self.check_pipe_name(rp["pipe"], f"{path}.pipe")
            self.check_pipe_name(rp["install"], f"{path}.install")
            source, target = self.pipe_by_name[rp["pipe"]], self.pipe_by_name[rp["install"]]
            if rp["pipe"] in by_pipe:
                _fail(f"{path}.pipe", f"pipe {rp['pipe']!r} already has a miss policy ({by_pipe[rp['pipe']]})")
            by_pipe[rp["pipe"]] = path
            sends_misses = source.fwd_miss.kind == "miss" or any(e.fwd and e.fwd.kind == "miss" for e in source.entries)
            if not sends_misses:
                _fail(f"{path}.pipe", f"pipe {source.name!r} never sends frames to the miss handler; "
                      f"set its fwd_miss to \"miss\" ({source.path}.fwd_miss)")
            if target.type != "basic":
                _fail(f"{path}.install", f"learned entries go into a basic pipe; {target.name!r} is {target.type}")
            if set(rp["match"]) != set(target.match_names()):
                _fail(f"{path}.match", f"must be the fields pipe {target.name!r} matches "
                      f"({', '.join(target.match_names())}); got {', '.join(rp['match'])}")
            if any(m.mask != m.field.full_mask for m in target.match):
                _fail(f"{path}.install", f"pipe {target.name!r} narrows a field with a mask; learned entries need "
                      "whole fields")
            sets = {}
            for key, expr in rp.get("set", {}).items():
                spath = join_path(f"{path}.set", key)
                _check_allowed(target, "push_mpls" if key == "mpls.push" else key, spath)
                sets[key] = self.parse_set_expr(key, expr, spath)
            if sum(1 for s in sets.values() if s.op != "const") > MAX_LEARN_SETS:
                _fail(f"{path}.set", f"at most {MAX_LEARN_SETS} computed values per policy")
            actions = self.parse_actions(rp.get("actions", {}), f"{path}.actions")
            for used in actions.used():
                _check_allowed(target, used, join_path(f"{path}.actions", used))
            fwd = None
            if "fwd" in rp:
                fwd = parse_fwd(rp["fwd"])
                self.fwd_refs.append((fwd, f"{path}.fwd", target))
            elif target.fwd is None:
                _fail(path, f"no fwd for learned entries and pipe {target.name!r} has no default fwd")
            max_flows = rp.get("max_flows", 65536)
            if target.max_entries is not None and len(target.entries) + max_flows > target.max_entries:
                _fail(f"{path}.max_flows", f"{max_flows} learned plus {len(target.entries)} static entries exceed "
                      f"pipe {target.name!r} max_entries {target.max_entries}")
            entry_name = rp.get("entry_name", rp["name"] + "-" + "-".join("{%s}" % f for f in rp["match"]))
            for ph in _PLACEHOLDER.findall(entry_name):
                if ph not in rp["match"]:
                    _fail(f"{path}.entry_name", f"placeholder {{{ph}}} is not a matched field{suggest(ph, rp['match'])};"
                          f" use one of: {', '.join('{' + m + '}' for m in rp['match'])}")
            # the sweeper ages a pipe's learned entries with one timeout: two policies must not disagree on it
            idle = float(rp.get("idle_timeout", target.idle_timeout))
            where = f"{path}.idle_timeout" if "idle_timeout" in rp else f"{target.path}.idle_timeout"
            if rp["install"] in timeouts and timeouts[rp["install"]][0] != idle:
                other, other_where = timeouts[rp["install"]]
                _fail(where, f"idle timeout {idle:g} s for learned entries of pipe {target.name!r}, but "
                      f"{other_where} gives them {other:g} s; policies installing into one pipe share its timeout")
            timeouts.setdefault(rp["install"], (idle, where))
            policies.append(MissPolicy(rp["name"], rp["pipe"], rp["install"], list(rp["match"]), sets, actions, fwd,
                                       max_flows, idle,
                                       rp.get("rate_limit", 0), rp.get("burst", 0), entry_name, path))
        return policies

    def parse_set_expr(self, key: str, expr, path: str) -> SetExpr:
        target = FIELDS["mpls.label"] if key == "mpls.push" else FIELDS[key]
        text = str(expr)
        if isinstance(expr, dict):
            if not target.is_address:
                _fail(path, f"a pool needs an address field; {key} is not one")
            try:
                base, plen = parse_prefix(target, expr["pool"])
            except ValueError as exc:
                _fail(f"{path}.pool", str(exc))
            size = 1 << (target.bits - plen)
            if size > 0xFFFFFFFF:
                _fail(f"{path}.pool", f"pool {expr['pool']!r} is larger than 2^32-1 addresses; use a longer prefix")
            return SetExpr("pool", base, pool_size=size, text=f"pool {expr['pool']}")
        m = _EXPR.match(text) if isinstance(expr, str) else None
        if m and m.group(1) in FIELDS:
            src = FIELDS[m.group(1)]
            if not self._compatible(src, target):
                _fail(path, f"{src.name} cannot be copied into {key} (different kind or width)")
            if m.group(2) is None:
                return SetExpr("field", 0, src.name, text=text)
            if src.kind in ("enum", "port"):
                _fail(path, f"cannot add to {src.name}")
            addend = self.parse_value(target, m.group(2), path)
            return SetExpr("field_add", addend, src.name, text=text)
        if m and "." in m.group(1) and m.group(1).split(".")[0] in {f.split(".")[0] for f in FIELDS}:
            _fail(path, f"unknown field {m.group(1)!r}{suggest(m.group(1), FIELDS)}")
        return SetExpr("const", self.parse_value(target, expr, path), text=text)

    @staticmethod
    def _compatible(src: Field, dst: Field) -> bool:
        if src.kind in ("ipv4", "ipv6", "mac", "be"):
            return src.kind == dst.kind and src.bits == dst.bits
        return dst.kind in ("uint", "be") and src.bits <= dst.bits


def build_config(raw: dict, source: str | None) -> Config:
    b = _Builder(raw)
    b.build_ports()
    b.build_sessions()
    b.build_pipes()
    policies = b.build_policies()
    b.check_refs()
    b.check_graph()
    cfg = Config(raw.get("name", ""), raw.get("description", ""), b.ports, b.pipes, b.sessions, policies,
                 source, raw)
    cfg.mpls_tc_map = _mpls_tc_map(raw.get("mpls_tc_map") or {})
    return cfg


DSCP_NAMES = {"be": 0, "cs0": 0, "cs1": 8, "af11": 10, "af12": 12, "af13": 14, "cs2": 16, "af21": 18, "af22": 20,
              "af23": 22, "cs3": 24, "af31": 26, "af32": 28, "af33": 30, "cs4": 32, "af41": 34, "af42": 36,
              "af43": 38, "cs5": 40, "va": 44, "ef": 46, "cs6": 48, "cs7": 56}


def _mpls_tc_map(raw: dict) -> dict[int, int]:
    """mpls_tc_map: {"ef": 5, "34": 4, ...} -> {46: 5, 34: 4}; the schema checked the values."""
    out = {}
    for key, tc in raw.items():
        k = key.strip().lower()
        if k in DSCP_NAMES:
            dscp = DSCP_NAMES[k]
        elif k.isdigit() and 0 <= int(k) <= 63:
            dscp = int(k)
        else:
            from .errors_util import suggest
            _fail(f"mpls_tc_map.{key}", f"expected a DSCP 0..63 or a name ({', '.join(DSCP_NAMES)}){suggest(k, DSCP_NAMES)}")
        if dscp in out and out[dscp] != tc:
            _fail(f"mpls_tc_map.{key}", f"DSCP {dscp} is mapped twice ({out[dscp]} and {tc})")
        out[dscp] = tc
    return out
