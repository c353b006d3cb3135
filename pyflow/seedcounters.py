"""Counters the seeds ask for, built from the datapath's own counters.

- Seed 004 (host MPLS encap): frames and bytes per (prefix, label stack). Every entry that pushes a
  label stack is one row; its prefix is its own match (an LPM prefix, a masked source), or for a
  hash (multipath) member the matches of the entries that forward to its pipe.
- Seed 003 (eBPF-cast): MPEG-TS datagrams per frame class (reference, non-reference, PSI, none) and
  how many of each drop_pct dropped, counted by the datapath where it classifies.
"""
from __future__ import annotations


def _match_text(pp, info) -> str:
    from .compiler import decode_fields
    from .config.fields import FIELDS, format_value
    from .native import ffi

    names = [m for m in pp.match if m in FIELDS and not m.startswith("meta.")]
    values = decode_fields(ffi.addressof(info, "match"), names)
    mask = decode_fields(pp.mask_bytes(info.mask_idx), names) if pp.type == "control" else None
    parts = []
    for k in names:
        f = FIELDS[k]
        if pp.type == "lpm":
            if f.is_address and k == pp.match[0]:
                parts.append(f"{format_value(f, values[k])}/{info.prefixlen}")
            continue
        if mask is not None:
            m = mask[k]
            if not m:
                continue
            if f.is_address and m != f.full_mask:
                parts.append(f"{format_value(f, values[k])}/{bin(m).count('1')}")
                continue
        parts.append(format_value(f, values[k]))
    return " ".join(parts) or "*"


def mpls_counters(ctl, entries: list[dict] | None = None) -> list[dict]:
    """[{pipe, entry, prefix, labels, packets, bytes}] for every entry that pushes MPLS labels."""
    from .native import lib

    program, inst = ctl.program, ctl.instance
    names = {eid: n for n, eid in program.entry_ids.items()}
    names.update({eid: n for n, (_p, eid) in ctl.runtime_entries.items()})
    pipes = {p.id: p for p in program.pipes}
    infos = {pp.id: inst.entry_list(pp.id, 1 << 16) for pp in program.pipes
             if "push_mpls" in ctl.cfg.pipe(pp.name).actions}
    if not infos:
        return []
    # who forwards into each pipe: the prefix of a multipath member is its feeder's match
    feeders: dict[str, list[str]] = {}
    for pp in program.pipes:
        lst = infos.get(pp.id)
        if lst is None and pp.type in ("lpm", "control", "basic"):
            lst = inst.entry_list(pp.id, 1 << 16)
        for info in lst or []:
            if info.entry.fwd.type == lib.PF_FWD_PIPE and info.entry.fwd.target in pipes:
                feeders.setdefault(pipes[info.entry.fwd.target].name, []).append(_match_text(pp, info))
    rows = []
    for pid, lst in infos.items():
        pp = pipes[pid]
        for info in lst:
            act = info.entry.act
            if not act.flags & lib.PF_ACT_PUSH_MPLS:
                continue
            labels = "/".join(str(act.mpls_labels[i] & 0xFFFFF) for i in range(act.mpls_count))
            prefix = ", ".join(feeders.get(pp.name, [])) if pp.type == "hash" else _match_text(pp, info)
            eid = info.entry.id
            rows.append({"pipe": pp.name, "entry": names.get(eid) or program.learned_entry_name(pid, info.match)
                         or f"#{eid}", "prefix": prefix or "*", "labels": labels, "id": eid})
    counts = inst.counters_entries([r["id"] for r in rows])
    for r in rows:
        r["packets"], r["bytes"] = counts.get(r.pop("id"), (0, 0))
    return rows


def seed_counters(ctl) -> dict:
    """{"dpi": {...} | None, "mpls": [...]} for `pyflow counters`."""
    try:
        dpi = ctl.instance.counters_dpi()
    except Exception:       # a backend without DPI counters
        dpi = None
    return {"dpi": dpi, "mpls": mpls_counters(ctl)}


def format_seed(data: dict) -> str:
    lines = []
    dpi = data.get("dpi")
    if dpi and any(dpi["frames"].values()):
        lines.append("  MPEG-TS DPI: " + ", ".join(
            f"{c}={dpi['frames'][c]} (dropped {dpi['dropped'][c]})" for c in ("reference", "non_reference", "psi",
                                                                             "none")))
    if data.get("mpls"):
        lines.append(f"  {'prefix':<24} {'labels':<20} {'entry':<20} {'packets':>10} {'bytes':>12}")
        for r in data["mpls"]:
            lines.append(f"  {r['prefix']:<24} {r['labels']:<20} {r['entry']:<20} {r['packets']:>10} {r['bytes']:>12}")
    return "\n".join(lines)
