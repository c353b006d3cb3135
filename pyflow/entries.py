"""Entries of a running instance over the control API: add (one or a batch, all or nothing),
replace in place, delete and list, as a part of the Controller."""
from __future__ import annotations

import array
import collections
import errno
import functools
import logging

from .errors import BackendUnavailable, ConfigError, UsageError

log = logging.getLogger("pyflow")


class EntryOps:
    """The control API's entry_* requests; needs the Controller's cfg, program, instance, layout,
    installed_masks, runtime_entries, runtime_records and pipe_counts."""

    def _op_entry_add(self, args):
        """One entry ({"pipe", "entry", "replace"}) or a batch ({"entries": [{"pipe", "entry", "replace"}, ...]}).

        A request is all or nothing: every entry is validated before any is installed, and if the
        datapath refuses one (a full table, a backend error) the entries this request added are removed
        and the ones it replaced are put back before the error is returned.
        """
        reset = args.get("reset_counters", False)
        if not isinstance(reset, bool):
            raise UsageError(f'entry add: "reset_counters" must be true or false, got {reset!r}')
        if "entries" in args:
            items = args["entries"]
            if not isinstance(items, list):
                raise UsageError('entry add: "entries" must be a list of {"pipe": NAME, "entry": {...}}')
            parsed = [_entry_item(item, f"entries[{i}]") for i, item in enumerate(items)]
            results = self._add_packed(parsed)
            if results is None:
                results = self._add_entries(parsed, batch=True, reset_counters=reset)
            return {"added": sum(not r["replaced"] for r in results),
                    "replaced": sum(r["replaced"] for r in results), "entries": results}
        return self._add_entries([_entry_item(args, None)], batch=False, reset_counters=reset)[0]

    def _add_packed(self, items: list[tuple[str, dict, bool]]) -> list[dict] | None:
        """A batch of new entries of basic pipes, checked against each pipe's field table and encoded in
        one pass (pyflow.config.packed), installed with one pf_entry_add_batch; None when an entry needs
        the full path (_add_entries), which then also words any error. All or nothing as well."""
        from .config.packed import PackedRecord, pack_entries

        if not hasattr(self.instance, "entry_add_batch"):
            return None
        pipes = self._packed_pipes()
        names = [spec["name"] for _, spec, _ in items]
        pipe_names = [pipe_name for pipe_name, _, _ in items]
        unique = set(names)
        # keys().isdisjoint walks the smaller side, not every installed name
        if (len(unique) != len(names) or not self.runtime_entries.keys().isdisjoint(unique)
                or not self.program.entry_ids.keys().isdisjoint(unique) or not set(pipe_names) <= pipes.keys()):
            return None     # repeated or existing names (or replace): the full path words it
        data = pack_entries(pipes, items)
        if data is None:
            return None
        self._check_room(pipe_names, items)
        batch = EntryBatch.from_bytes(data)
        try:
            ids = batch.install(self.instance)
        except Exception as exc:
            failed = _undo_batch(self.instance, exc, len(items))
            error = ConfigError(_entry_label(failed, names[failed], True),
                                f"{exc} (nothing from this request was applied)")
            error.exit_code = getattr(exc, "exit_code", 1)
            raise _indexed(error, failed) from None

        size = batch.size
        pipe_ids = [pipes[p].pipe_id for p in pipe_names]
        self.runtime_entries.update(zip(names, zip(pipe_names, ids)))
        self.runtime_records.update(
            (name, (PackedRecord(name, pid, pipe_name, data, i * size), 0))
            for i, (name, pid, pipe_name) in enumerate(zip(names, pipe_ids, pipe_names)))
        counts = self._pipe_counts()
        for pipe_name, n in collections.Counter(pipe_names).items():
            counts[pipe_name] = counts.get(pipe_name, 0) + n
        counted = {p.name for p in self.cfg.pipes if p.counters}
        self.layout.static_entries.extend(t for t in zip(names, pipe_names, ids) if t[1] in counted)
        log.info("Entries: %d added, 0 changed in one request", len(ids))
        return [{"name": name, "pipe": pipe_name, "id": eid, "replaced": False}
                for name, pipe_name, eid in zip(names, pipe_names, ids)]

    def _check_room(self, pipe_names: list[str], items) -> None:
        """_check_capacity for new entries only, counted per pipe; the entry-by-entry walk (and its
        message) only when a pipe would overflow."""
        counts = self._pipe_counts()
        pipes = {p.name: p for p in self.cfg.pipes}
        reserved: dict[str, int] = {}
        for mp in self.cfg.miss_policies:
            reserved[mp.install] = reserved.get(mp.install, 0) + mp.max_flows
        for pipe_name, n in collections.Counter(pipe_names).items():
            limit = pipes[pipe_name].max_entries
            if limit is not None and counts.get(pipe_name, 0) + reserved.get(pipe_name, 0) + n > limit:
                self._check_capacity(items, {}, True)

    def _packed_pipes(self) -> dict:
        """Pipe name -> PackedPipe of the running config's basic pipes (built once per config)."""
        from .config.packed import PackedPipe

        cache = getattr(self, "_packed_cache", None)
        if cache is None or cache[0] is not self.cfg:
            ids = self.cfg.pipe_ids()
            cache = (self.cfg, {p.name: PackedPipe(self.cfg, ids[p.name], p) for p in self.cfg.pipes
                                if p.type == "basic"})
            self._packed_cache = cache
        return cache[1]

    def _add_entries(self, items: list[tuple[str, dict, bool]], batch: bool,
                     reset_counters: bool = False) -> list[dict]:
        """Replacing an entry modifies it in place (its id, origin and counters stay, as ovs-ofctl
        mod-flows does); with reset_counters it is removed and added anew instead."""
        def where(i: int, name: str) -> str:
            return _entry_label(i, name, batch)

        # 1. names and pipes, against the running instance and within the request
        pipes = [p.name for p in self.cfg.pipes]
        seen: dict[str, int] = {}
        existing: dict[int, tuple[str, int]] = {}
        for i, (pipe_name, spec, replace) in enumerate(items):
            name = spec["name"]
            if pipe_name not in pipes:
                from .config.errors_util import suggest

                raise _indexed(ConfigError(f"entries[{i}].pipe" if batch else "pipe",
                                           f"no pipe {pipe_name!r}{suggest(pipe_name, pipes)} "
                                           f"(pipes: {', '.join(pipes)})"), i if batch else None)
            if name in seen:
                raise _indexed(ConfigError(where(i, name), f"appears twice in this request "
                                                           f"(first as entries[{seen[name]}])"), i)
            seen[name] = i
            found = self._entry_location(name)
            if found and not replace:
                raise _indexed(ConfigError(where(i, name), f"already exists in pipe {found[0]}; "
                                                           f"use --replace to change it"), i if batch else None)
            if found and found[0] != pipe_name:
                raise _indexed(ConfigError(where(i, name), f"lives in pipe {found[0]}, not {pipe_name}"),
                               i if batch else None)
            if found:
                existing[i] = found

        # 2. validate and compile every entry (one compile per pipe, not per entry)
        compiled = self._compile_runtime_entries(items, batch)
        self._check_capacity(items, existing, batch)

        # 3. mask slots of control pipes; remembered so a failed request can put the old ones back
        old_masks = {pid: list(slots) for pid, slots in self.installed_masks.items()}
        pipe_progs = {p.name: p for p in self.program.pipes}
        slots = []
        for i, c in enumerate(compiled):
            try:
                slots.append(self._mask_slot(pipe_progs[items[i][0]], c))
            except ConfigError as exc:
                self._restore_masks(old_masks)
                raise _indexed(ConfigError(where(i, c.name), exc.message), i if batch else None) from None

        # 4. install; undo everything on the first refusal
        removed: list[tuple[int, str, object]] = []   # (index, name, record of the entry it replaced)
        modified: list[tuple[int, str, object]] = []  # (index, name, record before), changed in place
        added: list[tuple[int, int]] = []             # (index, id)
        try:
            todo = []
            for i, c in enumerate(compiled):
                if i in existing and not reset_counters:
                    name = items[i][1]["name"]
                    record = self._installed_record(name)
                    try:
                        self.instance.entry_replace(existing[i][1], c.pipe_id, slots[i], c.prefixlen, c.match,
                                                    ffi_copy_entry(c.entry))
                    except BackendUnavailable:
                        pass    # a backend that cannot modify in place: removed and added anew below
                    except Exception as exc:
                        exc.pyflow_index = i
                        raise
                    else:
                        modified.append((i, name, record))
                        continue
                if i in existing:
                    name = items[i][1]["name"]
                    record = self._installed_record(name)
                    self.instance.entry_del(existing[i][1])
                    removed.append((i, name, record))
                    self._forget_entry(name)
                todo.append((i, c))
            added = self._install(todo, slots)
        except Exception as exc:
            failed_at = getattr(exc, "pyflow_index", None)
            for _, eid in added:
                _quietly(self.instance.entry_del, eid)
            for i, _, (c, slot) in modified:
                _quietly(self.instance.entry_replace, existing[i][1], c.pipe_id, slot, c.prefixlen, c.match,
                         ffi_copy_entry(c.entry))
            for _, name, record in removed:
                self._reinstall(name, record)
            self._restore_masks(old_masks)
            if failed_at is not None and batch:
                name = items[failed_at][1]["name"]
                error = ConfigError(where(failed_at, name), f"{exc} (nothing from this request was applied)")
                error.exit_code = getattr(exc, "exit_code", 1)
                raise _indexed(error, failed_at) from None
            raise

        # 5. bookkeeping
        results = []
        counted_pipes = {p.name for p in self.cfg.pipes if p.counters}
        counted_flag = _lib().PF_ENTRY_COUNTED
        counts = self._pipe_counts()
        for i, name, _ in modified:
            self.runtime_records[name] = (compiled[i], slots[i])
            results.append({"name": name, "pipe": items[i][0], "id": existing[i][1], "replaced": True})
        for i, eid in added:
            c = compiled[i]
            pipe_name, spec, _ = items[i]
            name = spec["name"]
            self.runtime_entries[name] = (pipe_name, eid)
            counts[pipe_name] = counts.get(pipe_name, 0) + 1
            self.runtime_records[name] = (c, slots[i])
            if pipe_name in counted_pipes or c.entry.flags & counted_flag:
                self.layout.static_entries.append((name, pipe_name, eid))
            results.append({"name": name, "pipe": pipe_name, "id": eid, "replaced": i in existing})
        if batch:
            log.info("Entries: %d added, %d changed in one request", len(results) - len(existing), len(existing))
        else:
            r = results[0]
            log.info("Entry %s %s in pipe %s (id %d)", r["name"], "changed" if r["replaced"] else "added",
                     r["pipe"], r["id"])
        return results

    def _check_capacity(self, items, existing: dict, batch: bool) -> None:
        """A pipe's max_entries holds for entries added at run time too, with its learned flows reserved.

        The datapath's table is shared by every pipe, so it would not stop one pipe from taking the
        room another was given; the config loader counts static entries plus each miss policy's
        max_flows against max_entries, and so does this check.
        """
        counts = self._pipe_counts()
        pipes = {p.name: p for p in self.cfg.pipes}
        reserved_by_pipe: dict[str, int] = {}
        for mp in self.cfg.miss_policies:
            reserved_by_pipe[mp.install] = reserved_by_pipe.get(mp.install, 0) + mp.max_flows
        growth: dict[str, int] = {}
        for i, (pipe_name, spec, _) in enumerate(items):
            if i in existing:
                continue
            pipe = pipes[pipe_name]
            if pipe.max_entries is None:
                continue
            growth[pipe_name] = growth.get(pipe_name, 0) + 1
            reserved = reserved_by_pipe.get(pipe_name, 0)
            if counts.get(pipe_name, 0) + reserved + growth[pipe_name] > pipe.max_entries:
                learned = f", {reserved} reserved for learned flows" if reserved else ""
                raise _indexed(ConfigError(_entry_label(i, spec["name"], batch),
                                           f"pipe {pipe_name} is full (max_entries {pipe.max_entries}: "
                                           f"{counts.get(pipe_name, 0)} installed{learned}); nothing from this "
                                           f"request was applied"), i if batch else None)

    def _pipe_counts(self) -> dict[str, int]:
        """Pipe name -> entries from the config and the control API that are installed now."""
        if self.pipe_counts is None:
            counts: dict[str, int] = {}
            pipe_of = {e.name: e.pipe_name for e in self.program.entries}
            for name in self.program.entry_ids:
                counts[pipe_of[name]] = counts.get(pipe_of[name], 0) + 1
            for pipe_name, _ in self.runtime_entries.values():
                counts[pipe_name] = counts.get(pipe_name, 0) + 1
            self.pipe_counts = counts
        return self.pipe_counts

    def _install(self, todo: list, slots: list[int]) -> list[tuple[int, int]]:
        """Add compiled entries, in order; one pf_entry_add_batch call for the lot when the datapath has it.

        On a failure every entry this call added is removed again, and the exception carries the
        request index of the entry that failed (pyflow_index).
        """
        if len(todo) > 1 and hasattr(self.instance, "entry_add_batch"):
            return self._install_batch(todo, slots)
        added = []
        try:
            for i, c in todo:
                added.append((i, self.instance.entry_add(c.pipe_id, slots[i], c.prefixlen, c.match,
                                                         ffi_copy_entry(c.entry))))
        except Exception as exc:
            for _, eid in added:
                _quietly(self.instance.entry_del, eid)
            exc.pyflow_index = todo[len(added)][0]
            raise
        return added

    def _install_batch(self, todo: list, slots: list[int]) -> list[tuple[int, int]]:
        try:
            ids = self.instance.entry_add_batch((c.pipe_id, slots[i], c.prefixlen, c.match, c.entry) for i, c in todo)
        except Exception as exc:
            failed = _undo_batch(self.instance, exc, len(todo))
            exc.pyflow_index = todo[failed][0]
            raise
        return [(i, eid) for (i, _), eid in zip(todo, ids)]

    def _installed_record(self, name: str):
        """What it takes to install entry `name` again: (compiled entry, mask slot)."""
        if name in self.runtime_records:
            return self.runtime_records[name]
        if name in self.program.entry_ids:
            c = self.program.entry(name)
            return c, c.mask_idx
        return None

    def _reinstall(self, name: str, record) -> None:
        if record is None:
            return
        c, slot = record
        try:
            eid = self.instance.entry_add(c.pipe_id, slot, c.prefixlen, c.match, ffi_copy_entry(c.entry))
        except Exception as exc:
            log.error("Entry %s could not be put back after a failed request: %s", name, exc)
            return
        self.runtime_entries[name] = (c.pipe_name, eid)
        self.runtime_records[name] = record
        counts = self._pipe_counts()
        counts[c.pipe_name] = counts.get(c.pipe_name, 0) + 1
        self.layout.static_entries.append((name, c.pipe_name, eid))

    def _restore_masks(self, old: dict[int, list[bytes]]) -> None:
        for pid, slots in list(self.installed_masks.items()):
            if old.get(pid, []) != slots:
                pipe_prog = next(p for p in self.program.pipes if p.id == pid)
                self._program_masks(pipe_prog, old.get(pid, []))

    def _op_entry_del(self, args):
        name = args.get("name")
        if not isinstance(name, str):
            raise UsageError('entry del: expected {"name": NAME}')
        where = self._entry_location(name)
        if not where:
            raise ConfigError(f"entry {name}", "no such entry (see 'pyflow entry list')")
        self.instance.entry_del(where[1])
        self._forget_entry(name)
        log.info("Entry %s removed from pipe %s", name, where[0])
        return {"name": name, "pipe": where[0], "id": where[1]}

    def _op_entry_list(self, args):
        from .compiler import decode_fields
        from .config.fields import FIELDS, format_masked, format_value
        from .native import ffi

        only = args.get("pipe")
        if only is not None and only not in [p.name for p in self.cfg.pipes]:
            raise ConfigError("pipe", f"no pipe {only!r}")
        names = {eid: (n, "config") for n, eid in self.program.entry_ids.items()}
        names.update({eid: (n, "runtime") for n, (_, eid) in self.runtime_entries.items()})
        learned_flag = _lib().PF_ENTRY_LEARNED
        rows = []
        for pp in self.program.pipes:
            if only and pp.name != only:
                continue
            match_names = [] if pp.type == "hash" else [m for m in pp.match if m in FIELDS]
            masks = self.installed_masks.get(pp.id) or [b""]
            lpm_field = next(p.lpm_field for p in self.cfg.pipes if p.name == pp.name) if pp.type == "lpm" else None
            infos = self.instance.entry_list(pp.id)
            counts = self.instance.counters_entries([info.entry.id for info in infos])
            for info in infos:
                eid = info.entry.id
                match = ffi.addressof(info, "match")
                if eid in names:
                    name, origin = names[eid]
                elif info.entry.flags & learned_flag:
                    name, origin = self.program.learned_entry_name(pp.id, match) or f"#{eid}", "learned"
                else:
                    name, origin = f"#{eid}", "unknown"
                values = decode_fields(match, match_names)
                if lpm_field:   # an LPM entry is a prefix, whatever its length (as it is written)
                    lpm = FIELDS[lpm_field]
                    mask = lpm.full_mask ^ ((1 << (lpm.bits - info.prefixlen)) - 1)
                    shown = {lpm_field: f"{format_value(lpm, values[lpm_field] & mask)}/{info.prefixlen}"}
                else:
                    slot = masks[info.mask_idx] if info.mask_idx < len(masks) else masks[0]
                    mask = decode_fields(slot, match_names) if slot else {}
                    shown = {k: format_masked(FIELDS[k], v, mask.get(k, 0)) for k, v in values.items()}
                rows.append({"pipe": pp.name, "name": name, "origin": origin, "id": eid,
                             "match": {k: v for k, v in shown.items() if v is not None},
                             "fwd": _fwd_text(info.entry.fwd, self.program),
                             "packets": counts.get(eid, (0, 0))[0], "bytes": counts.get(eid, (0, 0))[1]})
        return rows

    # -- runtime entry helpers ---------------------------------------------------
    def _entry_location(self, name: str) -> tuple[str, int] | None:
        if name in self.runtime_entries:
            return self.runtime_entries[name]
        if name in self.program.entry_ids:
            return self.program.entry(name).pipe_name, self.program.entry_ids[name]
        return None

    def _forget_entry(self, name: str) -> None:
        where = self._entry_location(name)
        if where and self.pipe_counts is not None:
            self.pipe_counts[where[0]] = max(0, self.pipe_counts.get(where[0], 0) - 1)
        self.runtime_entries.pop(name, None)
        self.runtime_records.pop(name, None)
        self.program.entry_ids.pop(name, None)
        self.layout.static_entries = [t for t in self.layout.static_entries if t[0] != name]

    def _compile_runtime_entries(self, items: list[tuple[str, dict, bool]], batch: bool) -> list:
        """Validate entries exactly as the config loader would, inside a copy of the running config.

        Entries of one pipe are compiled together (one load + compile per pipe in the request), so a
        batch costs about one config compile, not one per entry.
        """
        import re

        from .compiler import compile_program
        from .config import load_config

        by_pipe: dict[str, list[int]] = {}
        for i, (pipe_name, _, _) in enumerate(items):
            by_pipe.setdefault(pipe_name, []).append(i)
        compiled: list = [None] * len(items)
        for pipe_name, indexes in by_pipe.items():
            # Copies of only what changes (the config, its pipe list, this pipe); the rest is shared, read-only.
            pindex = self.program.pipe(pipe_name).id
            raw = dict(self.cfg.raw, pipes=list(self.cfg.raw["pipes"]))
            rp = raw["pipes"][pindex] = dict(raw["pipes"][pindex])
            if rp.get("type") == "hash":
                raise _indexed(ConfigError(f"pipe {pipe_name}", "hash pipe members come from the config; they "
                                           "cannot be added at run time"), indexes[0] if batch else None)
            rp["entries"] = [items[i][1] for i in indexes]
            # Capacity is the datapath's to enforce (it knows what is installed); the copy only validates.
            rp.pop("max_entries", None)
            try:
                cfg = load_config(raw)
                program = compile_program(cfg, self.bindings)
            except ConfigError as exc:
                inside = re.compile(rf"pipes\[{pindex}\]\.entries\[(\d+)\]")
                hit = inside.search(exc.path or "") or inside.search(exc.message)
                k = int(hit.group(1)) if hit else 0
                i = indexes[k]
                name = items[i][1]["name"]
                if batch:   # the JSON path inside the request: entries[17].match.ipv4.dst
                    label, suffix = f"entries[{i}]", f" (entry {name})"
                else:
                    label, suffix = _entry_label(i, name, batch), ""
                path = inside.sub(label, exc.path) if exc.path else label
                raise _indexed(ConfigError(path, inside.sub(label, exc.message) + suffix), i if batch else None) \
                    from None
            entries = {e.name: e for e in program.entries if e.pipe_name == pipe_name}
            pipe_prog = program.pipe(pipe_name)
            for i in indexes:
                c = entries[items[i][1]["name"]]
                c.mask_bytes = pipe_prog.mask_bytes(c.mask_idx)
                compiled[i] = c
        return compiled

    def _mask_slot(self, pipe_prog, compiled) -> int:
        """Control pipes: reuse the slot of an identical mask or program a new one."""
        if pipe_prog.type != "control":
            return compiled.mask_idx
        slots = self.installed_masks.setdefault(pipe_prog.id, [])
        if compiled.mask_bytes in slots:
            return slots.index(compiled.mask_bytes)
        lib = _lib()
        if len(slots) >= lib.PF_MAX_MASKS:
            raise ConfigError(f"entry {compiled.name}", f"pipe {pipe_prog.name} already uses all "
                              f"{lib.PF_MAX_MASKS} mask combinations; match the same fields as an existing entry")
        self._program_masks(pipe_prog, slots + [compiled.mask_bytes])
        return len(self.installed_masks[pipe_prog.id]) - 1

    def _program_masks(self, pipe_prog, new_slots: list[bytes]) -> None:
        from .native import ffi

        size = ffi.sizeof("struct pf_fields")
        masks = ffi.new("struct pf_fields[]", max(len(new_slots), 1))
        for i, m in enumerate(new_slots):
            ffi.buffer(masks)[i * size:(i + 1) * size] = m
        pipe_prog.value.nmasks = len(new_slots)
        self.instance.pipe_set(pipe_prog.id, pipe_prog.value, masks, len(new_slots))
        self.installed_masks[pipe_prog.id] = list(new_slots)


class EntryBatch:
    """n struct pf_entry_req in one buffer for pf_entry_add_batch, filled without a cffi call per entry.

    Every request starts as a copy of one template (pipe, mask slot, prefix length, match, entry);
    set_column() then writes one member for all of them from packed bytes (n values of its width,
    as the struct stores them) and set() one member of one request. install() hands the buffer to
    the C API as it is.
    """

    def __init__(self, n: int, pipe_id: int = 0, mask_idx: int = 0, prefixlen: int = 0, match=None, entry=None):
        from .native import ffi

        self.n = n
        self.size = _req_size()
        one = ffi.new("struct pf_entry_req *")
        one.pipe, one.mask_idx, one.prefixlen = pipe_id, mask_idx, prefixlen
        if match is not None:
            one.match = match[0] if ffi.typeof(match).kind == "pointer" else match
        if entry is not None:
            one.entry = entry[0] if ffi.typeof(entry).kind == "pointer" else entry
        self.buf = bytearray(bytes(ffi.buffer(one)) * n)

    @classmethod
    def from_bytes(cls, data: bytes) -> "EntryBatch":
        """A batch over requests already encoded back to back (pyflow.config.packed)."""
        self = cls.__new__(cls)
        self.size = _req_size()
        self.n = len(data) // self.size
        self.buf = bytearray(data)
        return self

    @staticmethod
    def offset(member: str) -> int:
        """Byte offset of a member of struct pf_entry_req, dotted: "match.ipv4_src", "entry.act.flags"."""
        return _req_offset(member)

    def set_column(self, member: str, data: bytes, width: int) -> None:
        if len(data) != self.n * width:
            raise ValueError(f"column {member}: {len(data)} bytes for {self.n} values of {width}")
        off = _req_offset(member)
        for k in range(width):
            self.buf[off + k::self.size] = data[k::width]

    def column(self, member: str, width: int) -> bytes:
        off = _req_offset(member)
        out = bytearray(self.n * width)
        for k in range(width):
            out[k::width] = self.buf[off + k::self.size]
        return bytes(out)

    def set(self, index: int, member: str, data: bytes) -> None:
        off = index * self.size + _req_offset(member)
        self.buf[off:off + len(data)] = data

    def ids(self) -> list[int]:
        return _u32_column(self.column("entry.id", 4))

    def results(self) -> list[int]:
        vals = _u32_column(self.column("result", 4))
        return [v - (1 << 32) if v >= 1 << 31 else v for v in vals]

    def install(self, instance) -> list[int]:
        """pf_entry_add_batch over the whole buffer; the ids, in order. On a failure the NativeError
        carries batch_results ((result, id) per request) and batch_added, as Instance.entry_add_batch's."""
        from .native import call, ffi, lib

        if not self.n:
            return []
        reqs = ffi.from_buffer("struct pf_entry_req[]", self.buf)
        added = ffi.new("uint32_t *")
        try:
            call(lib.pf_entry_add_batch, instance.handle, reqs, self.n, added)
        except Exception as exc:
            exc.batch_results = list(zip(self.results(), self.ids()))
            exc.batch_added = added[0]
            raise
        return self.ids()


@functools.cache
def _req_size() -> int:
    from .native import ffi

    return ffi.sizeof("struct pf_entry_req")


@functools.cache
def _req_offset(member: str) -> int:
    from .native import ffi

    return ffi.offsetof("struct pf_entry_req", *member.split("."))


def _u32_column(data: bytes) -> list[int]:
    col = array.array("I")
    col.frombytes(data)
    return col.tolist()


def _lib():
    from .native import lib

    return lib


def _entry_label(i: int, name: str, batch: bool) -> str:
    """How an error names entry i of a request."""
    return f"entries[{i}] (entry {name})" if batch else f"entry {name}"


def _entry_item(args, where: str | None) -> tuple[str, dict, bool]:
    """(pipe, entry spec, replace) from {"pipe": P, "entry": {...}, "replace": bool}."""
    if not isinstance(args, dict):
        raise _indexed(UsageError(f"{where}: expected {{\"pipe\": NAME, \"entry\": {{...}}}}"), where)
    pipe_name, spec, replace = args.get("pipe"), args.get("entry"), bool(args.get("replace"))
    if not isinstance(pipe_name, str) or not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        prefix = f"{where}: " if where else "entry add: "
        raise _indexed(UsageError(prefix + 'expected {"pipe": NAME, "entry": {"name": ..., "match": {...}}}'),
                       where)
    return pipe_name, spec, replace


def _indexed(exc: Exception, index) -> Exception:
    """Tag an error with the batch index it is about (the control API returns it so clients can name a line)."""
    if isinstance(index, str):
        index = int(index[index.index("[") + 1:index.index("]")])
    exc.index = index
    return exc


def _undo_batch(instance, exc, n: int) -> int:
    """Take out what a failed pf_entry_add_batch added (its per-entry results say exactly which);
    the index of the entry that failed."""
    results = getattr(exc, "batch_results", [])
    for result, eid in results:
        if result == 0:
            _quietly(instance.entry_del, eid)
    return next((k for k, (result, _) in enumerate(results) if result not in (0, -errno.ECANCELED)),
                min(getattr(exc, "batch_added", 0), n - 1))


def _quietly(fn, *args) -> None:
    try:
        fn(*args)
    except Exception as exc:  # cleanup after a failure: the first error is the one to report
        log.debug("cleanup: %s", exc)




def ffi_copy_entry(entry):
    from .native import ffi

    return ffi.new("struct pf_entry *", entry[0])


def _fwd_text(fwd, program) -> str:
    lib = _lib()
    kinds = {lib.PF_FWD_DEFAULT: "default", lib.PF_FWD_MISS: "miss", lib.PF_FWD_DROP: "drop",
             lib.PF_FWD_KERNEL: "kernel"}
    if fwd.type == lib.PF_FWD_PORT:
        return "port:" + next((p.name for p in program.ports if p.id == fwd.target), str(fwd.target))
    if fwd.type == lib.PF_FWD_PIPE:
        return "pipe:" + next((p.name for p in program.pipes if p.id == fwd.target), str(fwd.target))
    if fwd.type == lib.PF_FWD_SESSION:
        return f"session:{fwd.target}"
    return kinds.get(fwd.type, str(fwd.type))
