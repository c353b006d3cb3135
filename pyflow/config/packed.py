"""Runtime entries of basic pipes, checked against the compiled pipe's field table and encoded
straight into struct pf_entry_req bytes, one pass for a whole batch.

This accepts only what the full path (schema, semantic checks, compiler) is known to accept and
encodes it the way the compiler does: a basic pipe, every match field an exact scalar, set-field
actions the pipe allows, fwd absent (the pipe has a default) or port:NAME / drop / kernel. For
anything else it answers None and the caller runs the full path, which also words the errors.
"""
from __future__ import annotations

import re
import socket

from ..native import ffi, lib
from .fields import FIELDS, SETTABLE, parse_scalar, to_bytes

_NAME_RE = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}"
_NAME = re.compile(_NAME_RE)
_NAMES = re.compile(rf"(?:{_NAME_RE}\n)*{_NAME_RE}")     # a column of names, one a line
_KEYS = frozenset(("name", "match", "actions", "fwd"))


def _member(ctype: str, *path: str) -> int:
    return ffi.offsetof(ctype, *path)


class PackedPipe:
    """One basic pipe of the running config: its fields, offsets and request templates."""

    def __init__(self, cfg, pipe_id: int, pipe):
        self.pipe_id = pipe_id
        self.name = pipe.name
        self.ok = pipe.type == "basic"
        self.ports = cfg.port_ids()
        self.size = ffi.sizeof("struct pf_entry_req")
        self.counted = bool(pipe.counters)
        match_off = _member("struct pf_entry_req", "match")
        self.match = {m.name: (FIELDS[m.name], m.mask, match_off + _member("struct pf_fields", FIELDS[m.name].attr))
                      for m in pipe.match}
        self.match_names = frozenset(self.match)
        act_off = _member("struct pf_entry_req", "entry", "act")
        self.actions = {name: (FIELDS[name], act_off + _member("struct pf_actions", FIELDS[name].set_attr),
                               getattr(lib, FIELDS[name].set_flag))
                        for name in pipe.actions if name in SETTABLE}
        self.default_fwd = pipe.fwd is not None or pipe.domain == "egress"
        self.fwds = {"drop": (lib.PF_FWD_DROP, 0), "kernel": (lib.PF_FWD_KERNEL, 0)}
        self.fwds.update({f"port:{p.name}": (lib.PF_FWD_PORT, p.id) for p in cfg.ports})
        self._templates: dict[tuple, bytes] = {}
        # name -> (offset in the request, size, raw value -> bytes or None)
        self.match_enc = {n: (off, f.size, _encoder(f, mask, self.ports)) for n, (f, mask, off) in self.match.items()}
        self.action_enc = {n: (off, f.size, _encoder(f, f.full_mask, self.ports))
                           for n, (f, off, _) in self.actions.items()}

    def template(self, fwd: str | None, act_keys: tuple) -> bytes:
        key = (fwd, act_keys)
        tmpl = self._templates.get(key)
        if tmpl is None:
            req = ffi.new("struct pf_entry_req *")
            req.pipe = self.pipe_id
            req.entry.flags = lib.PF_ENTRY_COUNTED if self.counted else 0
            req.entry.fwd.type, req.entry.fwd.target = self.fwds[fwd] if fwd else (lib.PF_FWD_DEFAULT, 0)
            for name in act_keys:
                req.entry.act.flags |= self.actions[name][2]     # KeyError: not allowed here
            tmpl = self._templates[key] = bytes(ffi.buffer(req))
        return tmpl

    def encode(self, spec: dict) -> tuple[bytearray, tuple] | None:
        """(request bytes, match key) for one entry spec, or None when the full path must judge it."""
        if not self.ok or not _KEYS.issuperset(spec):
            return None
        name = spec.get("name")
        match = spec.get("match")
        actions = spec.get("actions", {})
        fwd = spec.get("fwd")
        if (not isinstance(name, str) or not _NAME.fullmatch(name) or not isinstance(match, dict)
                or not isinstance(actions, dict) or match.keys() != self.match_names):
            return None
        if fwd is None:
            if "fwd" in spec or not self.default_fwd:
                return None
        elif fwd not in self.fwds:
            return None
        act_keys = tuple(sorted(actions)) if len(actions) > 1 else tuple(actions)
        try:
            req = bytearray(self.template(fwd, act_keys))
        except KeyError:        # an action the pipe does not allow
            return None
        key = []
        for fname, raw in match.items():
            off, size, encode = self.match_enc[fname]
            data = encode(raw)
            if data is None:
                return None
            key.append(data)
            req[off:off + size] = data
        for aname in act_keys:
            off, size, encode = self.action_enc[aname]
            data = encode(actions[aname])
            if data is None:
                return None
            req[off:off + size] = data
        return req, tuple(key)


def _encoder(field, mask: int, ports: dict[str, int]):
    """raw value -> the member's bytes, or None when it is not a plain valid value within mask."""
    if field.kind == "ipv4" and mask == field.full_mask:
        def ipv4(raw):
            # inet_pton takes exactly what the loader's dotted-quad pattern does (no leading zeros)
            if isinstance(raw, str):
                try:
                    return socket.inet_pton(socket.AF_INET, raw)
                except OSError:
                    return None
            return None
        return ipv4

    def generic(raw):
        if not _plain(raw):
            return None
        try:
            value = parse_scalar(field, raw, ports)
        except ValueError:
            return None
        return None if value & ~mask else to_bytes(field, value)
    return generic


def _column(field, mask: int, encode, values: list) -> bytes | None:
    """The member's bytes for every value of a column, back to back, or None if one is not plain and valid."""
    if field.kind == "ipv4" and mask == field.full_mask:
        pton, family = socket.inet_pton, socket.AF_INET
        try:
            return b"".join([pton(family, v) for v in values])
        except (OSError, TypeError):
            return None
    parts = [encode(v) for v in values]
    return None if None in parts else b"".join(parts)


def pack_uniform(pipes: dict[str, PackedPipe], items: list[tuple[str, dict, bool]]) -> bytes | None:
    """pack_entries for a batch whose entries all have one shape (one pipe, the same keys, match fields,
    actions and fwd), a column at a time; None if they do not, or if anything needs the full path."""
    pipe_name, first, _ = items[0]
    packed = pipes.get(pipe_name)
    if packed is None or not packed.ok or not _KEYS.issuperset(first):
        return None
    specs = [spec for _, spec, _ in items]
    keys = first.keys()
    match0, actions0, fwd = first.get("match"), first.get("actions", {}), first.get("fwd")
    if not isinstance(match0, dict) or not isinstance(actions0, dict) or match0.keys() != packed.match_names:
        return None
    if (fwd is None and ("fwd" in first or not packed.default_fwd)) or (fwd is not None and fwd not in packed.fwds):
        return None
    act_keys = tuple(actions0)
    try:
        template = packed.template(fwd, tuple(sorted(act_keys)))
    except KeyError:
        return None
    if any(p != pipe_name for p, _, _ in items) or not all(s.keys() == keys for s in specs):
        return None
    if fwd is not None and not all(s["fwd"] == fwd for s in specs):
        return None
    matches = [s["match"] for s in specs]
    if not all(type(m) is dict and m.keys() == match0.keys() for m in matches):
        return None
    actions = [s["actions"] for s in specs] if "actions" in keys else []
    if not all(type(a) is dict and a.keys() == actions0.keys() for a in actions):
        return None
    if not _NAMES.fullmatch("\n".join([s["name"] for s in specs])):
        return None
    n, size = len(specs), packed.size
    buf = bytearray(template * n)
    columns = [(packed.match_enc[f], packed.match[f][0], packed.match[f][1], [m[f] for m in matches])
               for f in match0]
    columns += [(packed.action_enc[a], FIELDS[a], FIELDS[a].full_mask, [x[a] for x in actions]) for a in act_keys]
    for (off, width, encode), field, mask, values in columns:
        data = _column(field, mask, encode, values)
        if data is None:
            return None
        for k in range(width):
            buf[off + k::size] = data[k::width]
    moff, msize = _member("struct pf_entry_req", "match"), ffi.sizeof("struct pf_fields")
    if len({bytes(buf[i + moff:i + moff + msize]) for i in range(0, n * size, size)}) != n:
        return None     # two entries with one match: the full path says which
    return bytes(buf)


def _plain(raw) -> bool:
    """A scalar of the schema that is not a prefix (int or str, never bool)."""
    if isinstance(raw, str):
        return "/" not in raw
    return isinstance(raw, int) and not isinstance(raw, bool)


def pack_entries(pipes: dict[str, PackedPipe], items: list[tuple[str, dict, bool]]) -> bytes | None:
    """The requests of a whole batch as one buffer, or None if any entry needs the full path
    (including two entries of a pipe with the same match, which the full path refuses)."""
    if len(items) > 1:
        data = pack_uniform(pipes, items)
        if data is not None:
            return data
    out = []
    seen: set[tuple] = set()
    for pipe_name, spec, _ in items:
        packed = pipes.get(pipe_name)
        enc = packed.encode(spec) if packed else None
        if enc is None:
            return None
        req, key = enc
        key = (pipe_name, key)
        if key in seen:
            return None
        seen.add(key)
        out.append(req)
    return b"".join(out)


class PackedRecord:
    """What it takes to install a packed entry again (as an EntryProgram gives it): its request,
    kept as bytes of the batch buffer it came in."""

    __slots__ = ("name", "pipe_id", "pipe_name", "buf", "off")
    mask_idx = 0
    prefixlen = 0

    def __init__(self, name: str, pipe_id: int, pipe_name: str, buf: bytes, off: int):
        self.name, self.pipe_id, self.pipe_name, self.buf, self.off = name, pipe_id, pipe_name, buf, off

    def _part(self, member: str, ctype: str):
        off = self.off + _member("struct pf_entry_req", member)
        value = ffi.new(ctype + " *")
        ffi.buffer(value)[:] = self.buf[off:off + ffi.sizeof(ctype)]
        return value

    @property
    def match(self):
        return self._part("match", "struct pf_fields")

    @property
    def entry(self):
        return self._part("entry", "struct pf_entry")
