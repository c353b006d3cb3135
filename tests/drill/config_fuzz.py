"""Seeded generator of broken pipeline configs, each with where it was broken.

Every mutation starts from a valid config under conf/ and breaks it in one place: schema-invalid
(wrong type, unknown key, missing required key, bad name, out-of-range number, bad enum) or
schema-valid but semantically wrong (duplicate names and ids, forwards to nothing, values that do not
parse, entries on fields their pipe does not match, root and policy mistakes). The JSON path of the
broken node comes with it, so a test can check that the error names it.
"""
from __future__ import annotations

import copy
import json
import pathlib
import random

from pyflow.config.errors_util import join_path

CONF = pathlib.Path(__file__).resolve().parents[2] / "conf"


def bases() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(CONF.glob("*.json")) if p.stem != "schema"}


def path_text(parts) -> str:
    return join_path("", *parts)


def nodes(doc, parts=()):
    """(path parts, value) of every node below the top object."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield parts + (k,), v
            yield from nodes(v, parts + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield parts + (i,), v
            yield from nodes(v, parts + (i,))


def get(doc, parts):
    for p in parts:
        doc = doc[p]
    return doc


def put(doc, parts, value):
    get(doc, parts[:-1])[parts[-1]] = value


# values of a kind no node of the schema accepts in place of the given one
def wrong_value(value, rng):
    if isinstance(value, dict):
        return rng.choice([[], None, True])
    if isinstance(value, list):
        return rng.choice([{}, None, True])
    if isinstance(value, (bool, int, float)):
        return rng.choice([None, [], {}])
    return rng.choice([None, [], {}, True, 0.5])


def entries_of(doc):
    return [(("pipes", i, "entries", j), e) for i, p in enumerate(doc["pipes"]) for j, e in enumerate(p.get("entries", []))]


# ---- mutations: each returns the path parts of what it broke, or None when it does not apply ----

def m_wrong_type(doc, rng):
    candidates = [(p, v) for p, v in nodes(doc) if p[-1] not in ("description", "$schema")]
    parts, value = rng.choice(candidates)
    put(doc, parts, wrong_value(value, rng))
    return parts


def m_unknown_key(doc, rng):
    objs = [((), doc)] + [(p, v) for p, v in nodes(doc) if isinstance(v, dict)]
    parts, obj = rng.choice(objs)
    if len(parts) >= 2 and parts[-1] in ("match", "set"):
        key = rng.choice(["ipv4.srcc", "eth.dest", "l4.port"])   # keys that must be field names
    elif parts and parts[-1] == "actions":
        key = "ipv4.ttl.dec"
    else:
        key = rng.choice(["fwd_mis", "nmae", "max_entry", "bogus"])
    if key in obj:
        return None
    obj[key] = 1
    return parts + (key,)


REQUIRED = {"port": ("name", "id"), "pipe": ("name", "type", "match"), "entry": ("name",),
            "policy": ("name", "pipe", "install", "match"), "session": ("id", "members")}


def m_drop_required(doc, rng):
    kind = rng.choice(["top", "port", "pipe", "entry", "policy", "session"])
    if kind == "top":
        key = rng.choice(["ports", "pipes"])
        del doc[key]
        return ()
    items = {"port": [(("ports", i), p) for i, p in enumerate(doc["ports"])],
             "pipe": [(("pipes", i), p) for i, p in enumerate(doc["pipes"])],
             "entry": entries_of(doc),
             "policy": [(("miss_policies", i), p) for i, p in enumerate(doc.get("miss_policies", []))],
             "session": [(("sessions", i), s) for i, s in enumerate(doc.get("sessions", []))]}[kind]
    if not items:
        return None
    parts, obj = rng.choice(items)
    key = rng.choice(REQUIRED[kind])
    del obj[key]
    return parts


def m_bad_name(doc, rng):
    names = [(p, v) for p, v in nodes(doc) if p[-1] == "name" and isinstance(v, str)]
    parts, _ = rng.choice(names)
    put(doc, parts, rng.choice(["", "has space", "x" * 64, "-lead", "tab\tname", "é"]))
    return parts


def m_out_of_range(doc, rng):
    choices = [(("ports", i, "id"), rng.choice([-1, 64, 1 << 31])) for i in range(len(doc["ports"]))]
    choices += [(("pipes", i, "max_entries"), rng.choice([-5, 1 << 40])) for i in range(len(doc["pipes"]))]
    choices += [(p + ("priority",), rng.choice([-1, 1 << 32])) for p, _ in entries_of(doc)]
    choices += [(("miss_policies", i, k), -1) for i, _ in enumerate(doc.get("miss_policies", []))
                for k in ("max_flows", "rate_limit", "burst")]
    parts, value = rng.choice(choices)
    put(doc, parts, value)
    return parts


def m_bad_enum(doc, rng):
    choices = [(("pipes", i, "type"), rng.choice(["exact", "BASIC", "lpm6", ""])) for i in range(len(doc["pipes"]))]
    choices += [(("pipes", i, "domain"), rng.choice(["ingres", "both"])) for i in range(len(doc["pipes"]))]
    choices += [(("ports", i, "role"), "switch") for i in range(len(doc["ports"]))]
    choices += [(("pipes", i, "match", j), rng.choice(["ipv4.source", "ip.dst", "l4.port", "eth.vlan"]))
                for i, p in enumerate(doc["pipes"]) for j in range(len(p["match"]))]
    choices += [(("pipes", i, k), rng.choice(["port:", "pipe", "forward", "session:x", "port:a b"]))
                for i, p in enumerate(doc["pipes"]) for k in ("fwd", "fwd_miss")]
    parts, value = rng.choice(choices)
    put(doc, parts, value)
    return parts


def m_duplicate(doc, rng):
    kind = rng.choice(["port_name", "port_id", "pipe_name", "entry_name"])
    if kind.startswith("port") and len(doc["ports"]) >= 2:
        key = kind.split("_")[1]
        j = rng.randrange(1, len(doc["ports"]))
        doc["ports"][j][key] = doc["ports"][0][key]
        return ("ports", j, key)
    if kind == "pipe_name" and len(doc["pipes"]) >= 2:
        j = rng.randrange(1, len(doc["pipes"]))
        doc["pipes"][j]["name"] = doc["pipes"][0]["name"]
        return ("pipes", j, "name")
    entries = entries_of(doc)
    if kind == "entry_name" and len(entries) >= 2:
        j = rng.randrange(1, len(entries))
        get(doc, entries[j][0])["name"] = entries[0][1]["name"]
        return entries[j][0] + ("name",)
    return None


def m_dangling_fwd(doc, rng):
    targets = [(("pipes", i, k),) for i, p in enumerate(doc["pipes"]) for k in ("fwd", "fwd_miss")]
    targets += [(p + ("fwd",),) for p, _ in entries_of(doc)]
    (parts,) = rng.choice(targets)
    put(doc, parts, rng.choice(["port:nosuchport", "pipe:nosuchpipe", "session:63"]))
    return parts


BAD_VALUES = {"ipv4.src": ["10.0.0.300", "1.2.3", "::1"], "ipv4.dst": ["256.0.0.1", "a.b.c.d"],
              "eth.dst": ["zz:00:00:00:00:01", "00:11:22:33:44"], "eth.src": ["00:11:22:33:44:55:66"],
              "meta.port": ["nosuchport"], "vlan.id": [4096, -1], "l4.dport": [70000], "l4.sport": [65536],
              "ipv4.proto": [256], "mpls.label": [1 << 20], "ipv6.dst": ["2001:db8::g"], "ipv4.ttl": [300],
              "eth.type": [1 << 16], "ipv4.dscp": [64], "meta.mark": [1 << 33]}


def m_bad_value(doc, rng):
    spots = []
    for parts, e in entries_of(doc):
        for k in e.get("match", {}):
            if k in BAD_VALUES:
                spots.append((parts + ("match", k), k))
        for k in e.get("actions", {}):
            if k in BAD_VALUES:
                spots.append((parts + ("actions", k), k))
    if not spots:
        return None
    parts, field = rng.choice(spots)
    put(doc, parts, rng.choice(BAD_VALUES[field]))
    return parts


def m_field_not_in_pipe(doc, rng):
    spots = []
    for parts, e in entries_of(doc):
        pipe = doc["pipes"][parts[1]]
        matched = {m if isinstance(m, str) else m["field"] for m in pipe["match"]}
        free = [f for f in ("ipv4.ttl", "tcp.flags", "ipv6.hop", "l4.sport") if f not in matched]
        if free and pipe["type"] != "hash":
            spots.append((parts, rng.choice(free)))
    if not spots:
        return None
    parts, field = rng.choice(spots)
    get(doc, parts).setdefault("match", {})[field] = 1
    return parts + ("match", field)


def m_root(doc, rng):
    roots = [i for i, p in enumerate(doc["pipes"]) if p.get("root")]
    if rng.random() < 0.5 or len(doc["pipes"]) < 2:
        for i in roots:
            doc["pipes"][i]["root"] = False
        return ("pipes",)
    other = rng.choice([i for i in range(len(doc["pipes"])) if i not in roots])
    doc["pipes"][other]["root"] = True
    return ("pipes",)   # which of the two is named depends on the order; both are under pipes


def m_policy(doc, rng):
    policies = doc.get("miss_policies", [])
    if not policies:
        return None
    i = rng.randrange(len(policies))
    kind = rng.choice(["pipe", "install", "set", "name_tpl", "max_flows"])
    base = ("miss_policies", i)
    if kind in ("pipe", "install"):
        policies[i][kind] = "nosuchpipe"
        return base + (kind,)
    if kind == "set":
        key = next(iter(policies[i].get("set") or {"ipv4.dst": 0}))
        policies[i].setdefault("set", {})[key] = rng.choice(["ipv4.srcc + 1.1.1.1", "ipv4.src +", "eth.src + 1.1.1.1"])
        return base + ("set",)
    if kind == "name_tpl":
        policies[i]["entry_name"] = "{ipv4.nosuch}-flow"
        return base + ("entry_name",)
    policies[i]["max_flows"] = 1 << 30
    return base + ("max_flows",)


SCHEMA_MUTATIONS = [m_wrong_type, m_unknown_key, m_drop_required, m_bad_name, m_out_of_range, m_bad_enum]
SEMANTIC_MUTATIONS = [m_duplicate, m_dangling_fwd, m_bad_value, m_field_not_in_pipe, m_root, m_policy]


def generate(count: int, seed: int, only: str | None = None):
    """count (label, config, expected path) triples, reproducible from seed (from the base config only)."""
    rng = random.Random(seed)
    base = bases()
    names = [only] if only else sorted(base)
    out = []
    while len(out) < count:
        bname = rng.choice(names)
        doc = copy.deepcopy(base[bname])
        mutation = rng.choice(SCHEMA_MUTATIONS + SEMANTIC_MUTATIONS)
        parts = mutation(doc, rng)
        if parts is None:
            continue
        out.append((f"{len(out)}:{bname}:{mutation.__name__}", doc, path_text(parts)))
    return out


def on_route(reported: str, message: str, expected: str) -> bool:
    """The reported path names the broken node, one of its ancestors (a schema error about the object that
    holds it) or something inside it; or the error is about a check that depends on the broken node and says
    so in its message (e.g. a policy whose pipe no longer sends to the miss handler names that fwd_miss)."""
    if not expected:
        return not reported      # the top-level object itself
    r, e = reported.replace("[", ".["), expected.replace("[", ".[")
    return bool(r) and (e == r or e.startswith(r + ".") or r.startswith(e + ".") or f"({expected})" in message)
