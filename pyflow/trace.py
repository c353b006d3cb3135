"""`pyflow trace`: what the loaded datapath does with one frame, pipe by pipe.

The frame runs through the instance's own program and maps (pf_trace_run: BPF_PROG_RUN with
PF_META_TRACE on ebpf), so the answer is the datapath's, not a model's. Nothing is counted or
learned; a drop_pct action keeps the frame and the hop says it may be dropped. Python only turns
the per-hop record (pipe, entry, forward, the parsed fields after each pipe) into names.
"""
from __future__ import annotations

import os
import subprocess
import uuid

from .errors import UsageError

FIELD_ORDER = ("eth.src", "eth.dst", "eth.type", "vlan.id", "vlan.inner", "mpls.label", "ipv4.src", "ipv4.dst",
               "ipv6.src", "ipv6.dst", "ipv4.proto", "ipv4.ttl", "ipv4.dscp", "l4.sport", "l4.dport", "tcp.flags",
               "mpegts.frame", "meta.mark")
DROP_REASONS = ("malformed", "action", "no_miss_handler", "depth", "tx_fail", "sampled", "action_fail",
                "rate_limit")
PARSE_ERRORS = {-1: "shorter than an Ethernet header", -2: "truncated VLAN tag", -3: "truncated MPLS label stack",
                -4: "truncated or invalid IPv4 header", -5: "truncated IPv6 header",
                -6: "truncated TCP/UDP/ICMP header"}


def _raw(cdata) -> bytes:
    """Bytes of a struct pf_fields cdata (a struct member or a pointer)."""
    from .native import ffi

    if ffi.typeof(cdata).kind == "struct":
        cdata = ffi.addressof(cdata)
    return bytes(ffi.buffer(cdata))


def _fields(cdata) -> dict[str, str]:
    from .compiler import decode_fields
    from .config.fields import FIELDS, format_value

    values = decode_fields(_raw(cdata), FIELD_ORDER)
    is_v6 = any(values[k] for k in ("ipv6.src", "ipv6.dst"))
    out = {}
    for k in FIELD_ORDER:
        if (k.startswith("ipv4.src") or k.startswith("ipv4.dst")) and is_v6:
            continue
        if k.startswith("ipv6.") and not is_v6:
            continue
        # zero = absent (mpegts.frame: not inspected until a pipe needs it)
        if k in ("vlan.id", "vlan.inner", "mpls.label", "meta.mark", "tcp.flags", "mpegts.frame") and not values[k]:
            continue
        out[k] = format_value(FIELDS[k], values[k])
    return out


def _fwd(fwd, names) -> str:
    from .native import lib

    kinds = {lib.PF_FWD_DEFAULT: "default", lib.PF_FWD_MISS: "miss", lib.PF_FWD_DROP: "drop",
             lib.PF_FWD_KERNEL: "kernel"}
    if fwd.type == lib.PF_FWD_PORT:
        return "port:" + names["ports"].get(fwd.target, str(fwd.target))
    if fwd.type == lib.PF_FWD_PIPE:
        return "pipe:" + names["pipes"].get(fwd.target, str(fwd.target))
    if fwd.type == lib.PF_FWD_SESSION:
        return f"session:{fwd.target}"
    return kinds.get(fwd.type, str(fwd.type))


def _actions(act) -> list[str]:
    """The entry's actions as written in a config, in the order the datapath applies them."""
    from .config.fields import FIELDS, format_value
    from .native import ffi, lib

    flags, out = act.flags, []
    if flags & lib.PF_ACT_POP_VLAN:
        out.append("pop_vlan")
    if flags & lib.PF_ACT_POP_MPLS:
        out.append(f"pop_mpls {act.mpls_pop_count or 1}")
    for name, f in FIELDS.items():
        if f.set_flag and flags & getattr(lib, f.set_flag) and f.set_attr:
            raw = bytes(ffi.buffer(ffi.addressof(act, f.set_attr), f.size))
            from .config.fields import from_bytes
            out.append(f"{name}={format_value(f, from_bytes(f, raw))}")
    if flags & lib.PF_ACT_DEC_TTL:
        out.append("dec_ttl")
    if flags & lib.PF_ACT_PUSH_MPLS:
        labels = [act.mpls_labels[i] for i in range(act.mpls_count)]
        out.append("push_mpls " + "/".join(f"{x & 0xFFFFF}" + (f"(tc {x >> 20 & 7})" if x >> 20 & 7 else "")
                                           for x in labels))
    if flags & lib.PF_ACT_PUSH_VLAN:
        out.append(f"push_vlan {act.vlan_id}")
    if flags & lib.PF_ACT_CLONE:
        out.append(f"clone session:{act.session}")
    if flags & lib.PF_ACT_DROP_PCT:
        out.append(f"drop_pct {act.drop_pct}%")
    return out


class Tracer:
    """Traces frames on an opened instance programmed from `program` (pyflow.compiler.Program).

    entry_names: entry id -> name for entries the program does not know (runtime ones).
    """

    def __init__(self, instance, program, entry_names: dict[int, str] | None = None):
        self.instance = instance
        self.program = program
        self.cfg = program.config
        self.names = program.names()
        self.entry_names = {eid: n for n, eid in program.entry_ids.items()}
        self.entry_names.update(entry_names or {})
        self.pipes = {p.id: p for p in program.pipes}

    def port_id(self, port: str) -> int:
        ports = {p.name: p.id for p in self.program.ports}
        if port in ports:
            return ports[port]
        if port.isdigit() and int(port) in ports.values():
            return int(port)
        from .config.errors_util import suggest
        raise UsageError(f"--port: no port {port!r} in {self.cfg.name!r}{suggest(port, ports)} "
                         f"(ports: {', '.join(ports)})")

    def _entry(self, pipe_id: int, entry_id: int) -> dict:
        from .compiler import decode_fields
        from .config.fields import FIELDS, format_value
        from .native import ffi

        pp = self.pipes.get(pipe_id)
        info = next((i for i in self.instance.entry_list(pipe_id, 1 << 16) if i.entry.id == entry_id), None)
        out = {"id": entry_id}
        if info is None:
            out["name"] = self.entry_names.get(entry_id, f"#{entry_id}")
            return out
        match = ffi.addressof(info, "match")
        name = self.entry_names.get(entry_id) or self.program.learned_entry_name(pipe_id, match) or f"#{entry_id}"
        values = decode_fields(match, [m for m in (pp.match if pp else []) if m in FIELDS])
        m = {}
        for k, v in values.items() if pp is None or pp.type != "hash" else ():
            text = self.names["ports"].get(v, str(v)) if k == "meta.port" else format_value(FIELDS[k], v)
            if pp and pp.type == "lpm" and FIELDS[k].is_address:
                text += f"/{info.prefixlen}"
            elif not v and pp and pp.type == "control":
                continue    # a wildcard of a masked pipe
            m[k] = text
        out.update(name=name, match=m, actions=_actions(info.entry.act))
        return out

    def _would_install(self, pipe_name: str, fields_cdata) -> list[dict]:
        """What the miss policies of this pipe would install for a frame with these fields."""
        from .compiler import decode_fields
        from .config.fields import FIELDS, format_value
        from .counters import render_entry_name

        out = []
        for mp in self.cfg.miss_policies:
            if mp.pipe != pipe_name:
                continue
            needed = set(mp.match) | {e.src_field for e in mp.sets.values() if e.src_field}
            values = decode_fields(_raw(fields_cdata), [n for n in needed if n in FIELDS])
            sets = {}
            for name, expr in mp.sets.items():
                f = FIELDS.get(name)
                if expr.op == "const":
                    v = expr.value
                elif expr.op == "field":
                    v = values.get(expr.src_field, 0)
                elif expr.op == "field_add":
                    v = values.get(expr.src_field, 0) + expr.value
                    if f:
                        v &= f.full_mask
                else:
                    sets[name] = f"one of {expr.pool_size} from {expr.text}"
                    continue
                sets[name] = format_value(f, v) if f else str(v)
            out.append({"policy": mp.name, "install": mp.install,
                        "match": {k: format_value(FIELDS[k], values[k]) for k in mp.match if k in values},
                        "actions": sets, "fwd": str(mp.fwd) if mp.fwd else None,
                        "entry_name": render_entry_name(mp.entry_name, values), "max_flows": mp.max_flows,
                        "idle_timeout": mp.idle_timeout})
        return out

    def trace(self, port: str | int, frame: bytes) -> dict:
        from .instance import verdict_kind
        from .native import lib

        port_id = port if isinstance(port, int) else self.port_id(port)
        verdict, out, t = self.instance.trace_run(port_id, frame)
        parse = t.parse_result if t.parse_result < 0x80000000 else t.parse_result - (1 << 32)
        result = {"instance": getattr(self.instance, "name", ""), "config": self.cfg.name,
                  "port": self.names["ports"].get(port_id, str(port_id)), "port_id": port_id,
                  "input": frame.hex(), "input_len": len(frame), "hops": []}
        if parse == 1:
            result["parsed"] = None
            result["note"] = "the program did not parse the frame (nothing programmed, or not one of its ports)"
        else:
            result["parsed"] = _fields(t.before)
            if parse < 0:
                result["parse_error"] = PARSE_ERRORS.get(parse, str(parse))
        before = result["parsed"] or {}
        for i in range(min(t.nhops, lib.PF_MAX_PIPE_DEPTH)):
            h = t.hops[i]
            pp = self.pipes.get(h.pipe)
            after = _fields(h.after)
            hop = {"pipe": pp.name if pp else str(h.pipe), "pipe_id": h.pipe,
                   "type": pp.type if pp else "?", "domain": pp.domain if pp else "?",
                   "egress_of_port": bool(h.flags & lib.PF_TRACE_EGRESS),
                   "hit": bool(h.flags & lib.PF_TRACE_HIT), "fwd": _fwd(h.fwd, self.names),
                   "changed": {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}}
            hop["changed"].update({k: [v, None] for k, v in before.items() if k not in after})
            if hop["hit"]:
                hop["entry"] = self._entry(h.pipe, h.entry_id)
            else:
                hop["fwd_miss"] = hop["fwd"]
                if h.fwd.type == lib.PF_FWD_MISS and pp:
                    hop["would_install"] = self._would_install(pp.name, h.after)
            if h.flags & lib.PF_TRACE_SAMPLED:
                hop["sampled"] = "drop_pct: the datapath drops this share of such frames; the trace kept this one"
            if h.result == 1:
                hop["drop"] = DROP_REASONS[h.drop_reason] if h.drop_reason < len(DROP_REASONS) else h.drop_reason
            elif h.result == 2:
                hop["drop"] = "pipe not in use"
            result["hops"].append(hop)
            before = after
        kind = verdict_kind(verdict)
        v = {"kind": kind}
        if verdict.kind == lib.PF_VERDICT_TX:
            v["port"] = self.names["ports"].get(verdict.out_port, str(verdict.out_port))
        elif verdict.kind == lib.PF_VERDICT_DROP:
            v["reason"] = DROP_REASONS[verdict.drop_reason] if verdict.drop_reason < len(DROP_REASONS) \
                else str(verdict.drop_reason)
        elif verdict.kind == lib.PF_VERDICT_REPLICATE:
            v["session"] = verdict.out_port
            sess = {s.id: s for s in self.cfg.sessions}.get(verdict.out_port)
            if sess:
                v["members"] = [m.port for m in sess.members]
        elif verdict.kind == lib.PF_VERDICT_MISS:
            v["to"] = "miss handler"
        elif verdict.kind == 0xFFFFFFFF:
            v["kind"] = "pass"
            v["note"] = "not handled by the pipeline"
        result["verdict"] = v
        result["output"] = out.hex() if verdict.kind in (lib.PF_VERDICT_TX, lib.PF_VERDICT_REPLICATE,
                                                         lib.PF_VERDICT_PASS) else None
        result["output_changed"] = result["output"] is not None and out != frame
        return result


def format_text(r: dict) -> str:
    lines = [f"trace: {r['input_len']} bytes in on port {r['port']} (id {r['port_id']})"
             + (f", instance {r['instance']}" if r.get("instance") else "")]
    if r.get("parsed") is None:
        lines.append(f"  {r.get('note', '')}")
    else:
        lines.append("  parsed: " + " ".join(f"{k}={v}" for k, v in r["parsed"].items()))
        if r.get("parse_error"):
            lines.append(f"  parse error: {r['parse_error']}")
    for i, h in enumerate(r["hops"], 1):
        where = f"{h['type']}, {h['domain']}" + (", egress pipe of the chosen port" if h["egress_of_port"] else "")
        if h["hit"]:
            e = h["entry"]
            match = " ".join(f"{k}={v}" for k, v in e.get("match", {}).items()) or \
                ("(bucket chosen by flow hash)" if h["type"] == "hash" else "(any)")
            lines.append(f"  {i}. pipe {h['pipe']} ({where}): hit entry {e['name']} (id {e['id']}) match {match}")
            lines.append(f"     actions: {', '.join(e.get('actions', [])) or 'none'}")
        else:
            lines.append(f"  {i}. pipe {h['pipe']} ({where}): miss")
        for k, (a, b) in h["changed"].items():
            lines.append(f"     {k}: {a} -> {b}")
        if h.get("sampled"):
            lines.append(f"     {h['sampled']}")
        if h.get("drop"):
            lines.append(f"     drop: {h['drop']}")
        else:
            lines.append(f"     fwd: {h['fwd']}")
        for w in h.get("would_install", []):
            match = " ".join(f"{k}={v}" for k, v in w["match"].items())
            acts = " ".join(f"{k}={v}" for k, v in w["actions"].items())
            lines.append(f"     miss policy {w['policy']} would install {w['entry_name']} into {w['install']}: "
                         f"match {match}" + (f" actions {acts}" if acts else "")
                         + (f" fwd {w['fwd']}" if w["fwd"] else "") + ", then resubmit the frame")
    v = r["verdict"]
    detail = {"tx": f" to port {v.get('port')}", "drop": f" ({v.get('reason')})",
              "replicate": f" to session {v.get('session')}" + (f" ({', '.join(v['members'])})"
                                                               if v.get("members") else ""),
              "miss": " to the miss handler (not sent: a trace learns nothing)"}.get(v["kind"], "")
    lines.append(f"  verdict: {v['kind']}{detail}")
    if r.get("output") is not None:
        lines.append(f"  out: {len(r['output']) // 2} bytes" + (" (rewritten)" if r["output_changed"] else
                                                                 " (unchanged)")
                     + f" {r['output'][:128]}{'...' if len(r['output']) > 128 else ''}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# --config alone: a throwaway instance in a namespace of its own.

def trace_config(config_path: str, port: str, frame: bytes) -> dict:
    """Load the config into a throwaway ebpf instance (nothing pinned, nothing attached) whose
    ports are veths in a private namespace, trace, and remove everything."""
    from pyroute2 import netns

    from .compiler import compile_program
    from .config import load_config
    from .instance import Instance

    cfg = load_config(config_path)
    ns = f"pftr{uuid.uuid4().hex[:8]}"
    if os.geteuid() != 0:
        raise UsageError("trace --config: needs root (it loads the datapath into a throwaway instance)")
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    try:
        bindings = {}
        for i, p in enumerate(cfg.ports):
            a, b = f"t{i}a", f"t{i}b"
            subprocess.run(["ip", "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b], check=True,
                           capture_output=True)
            bindings[p.name] = a
        program = compile_program(cfg, bindings)
        netns.pushns(ns)
        try:
            inst = Instance.open("ebpf", ns, no_pin=True, fresh=True)
            try:
                program.apply(inst)
                tracer = Tracer(inst, program)
                result = tracer.trace(port, frame)
                result["instance"] = f"(throwaway, from {config_path})"
                return result
            finally:
                inst.close()
        finally:
            netns.popns()
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def controller_trace(ctl, args: dict) -> dict:
    """The control API's "trace" op: {"port": NAME|ID, "frame": HEX} on the running instance."""
    port, frame = args.get("port"), args.get("frame")
    if not isinstance(port, (str, int)) or isinstance(port, bool):
        raise UsageError('trace: expected "port": a port name or id')
    if not isinstance(frame, str):
        raise UsageError('trace: expected "frame": the frame in hex')
    runtime = {eid: name for name, (_pipe, eid) in ctl.runtime_entries.items()}
    tracer = Tracer(ctl.instance, ctl.program, runtime)
    from .frames import frame_from_hex
    from .native import lib

    data = frame_from_hex(frame)
    if ctl.opts.backend != "ebpf" and not hasattr(lib, "pf_trace_run"):
        raise UsageError(f"trace: backend {ctl.opts.backend} cannot trace")
    result = tracer.trace(str(port) if isinstance(port, int) else port, data)
    result["instance"] = ctl.instance_name
    result["backend"] = ctl.opts.backend
    return result
