"""The validated pipeline model. Built only by pyflow.config.load_config.

Every object keeps `path`, its JSON path in the source, so later stages
(compiler, apply) can still point the user at the right line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..native import lib
from .fields import FIELDS, Field


@dataclass(frozen=True)
class Fwd:
    """A forward target: port:NAME, pipe:NAME, miss, drop, session:ID / group:ID, kernel."""
    kind: str                 # port | pipe | miss | drop | session | kernel
    target: str | int | None = None   # port/pipe name or session id

    def __str__(self) -> str:
        if self.kind in ("miss", "drop", "kernel"):
            return self.kind
        return f"{self.kind}:{self.target}"


@dataclass(frozen=True)
class MatchField:
    """One field a pipe matches on, with the pipe-wide mask (full unless narrowed)."""
    name: str
    mask: int

    @property
    def field(self) -> Field:
        return FIELDS[self.name]


@dataclass(frozen=True)
class MatchValue:
    value: int
    mask: int
    prefixlen: int | None = None  # set when written as a prefix


@dataclass
class Actions:
    """Action values of one entry (or the constant part of a learned entry)."""
    sets: dict[str, int] = field(default_factory=dict)   # field name -> value
    dec_ttl: bool = False
    push_vlan: int | None = None
    pop_vlan: bool = False
    push_mpls: list[int] = field(default_factory=list)
    mpls_ttl: int = 0
    pop_mpls: int = 0
    mpls_tc: int | str | None = None    # TC bits of pushed labels: 0..7, "dscp" (the config's map), None
    clone: int | None = None
    count: bool = False
    drop_pct: int | None = None

    def used(self) -> list[str]:
        """Action template names this uses (what the pipe must allow)."""
        names = list(self.sets)
        for op in ("dec_ttl", "pop_vlan", "count"):
            if getattr(self, op):
                names.append(op)
        if self.push_vlan is not None:
            names.append("push_vlan")
        if self.push_mpls:
            names.append("push_mpls")
        if self.pop_mpls:
            names.append("pop_mpls")
        if self.clone is not None:
            names.append("clone")
        if self.drop_pct is not None:
            names.append("drop_pct")
        return names

    def is_empty(self) -> bool:
        return not self.used()


@dataclass
class Entry:
    name: str
    match: dict[str, MatchValue]
    actions: Actions
    fwd: Fwd | None
    priority: int
    weight: int
    path: str


@dataclass
class Pipe:
    name: str
    type: str                 # basic | control | lpm | hash
    domain: str               # ingress | egress
    root: bool
    match: list[MatchField]
    actions: list[str]        # action templates entries may use
    fwd: Fwd | None
    fwd_miss: Fwd
    counters: bool
    max_entries: int | None
    idle_timeout: float
    entries: list[Entry]
    path: str

    def match_names(self) -> list[str]:
        return [m.name for m in self.match]

    @property
    def lpm_field(self) -> str | None:
        return self.match[0].name if self.type == "lpm" else None


@dataclass
class Port:
    name: str
    id: int
    role: str
    ifname: str | None
    egress_pipe: str | None
    path: str


@dataclass
class SessionMember:
    port: str
    instance: int
    class_of_service: int
    truncate: int


@dataclass
class Session:
    id: int
    name: str | None
    members: list[SessionMember]
    path: str


@dataclass(frozen=True)
class SetExpr:
    """Value of a learned entry's action: const, a packet field, field + const, or a pool."""
    op: str                   # const | field | field_add | pool
    value: int = 0
    src_field: str | None = None
    pool_size: int = 0
    text: str = ""


@dataclass
class MissPolicy:
    name: str
    pipe: str                 # the pipe whose misses this handles
    install: str              # the pipe that receives the learned entry
    match: list[str]
    sets: dict[str, SetExpr]  # field name (or 'mpls.push') -> expression
    actions: Actions          # constant action values
    fwd: Fwd | None
    max_flows: int
    idle_timeout: float
    rate_limit: int
    burst: int
    entry_name: str
    path: str


@dataclass
class Config:
    name: str
    description: str
    ports: list[Port]
    pipes: list[Pipe]
    sessions: list[Session]
    miss_policies: list[MissPolicy]
    source: str | None = None
    raw: dict | None = field(default=None, repr=False)
    mpls_tc_map: dict[int, int] = field(default_factory=dict)   # DSCP -> MPLS TC (seed 004)

    def port(self, name: str) -> Port:
        return next(p for p in self.ports if p.name == name)

    def pipe(self, name: str) -> Pipe:
        return next(p for p in self.pipes if p.name == name)

    def session(self, sid: int) -> Session:
        return next(s for s in self.sessions if s.id == sid)

    @property
    def root_pipe(self) -> Pipe:
        return next(p for p in self.pipes if p.root)

    def pipe_ids(self) -> dict[str, int]:
        """Pipe ids are positions in the config."""
        return {p.name: i for i, p in enumerate(self.pipes)}

    def port_ids(self) -> dict[str, int]:
        return {p.name: p.id for p in self.ports}


HASH_BUCKETS = lib.PF_HASH_BUCKETS


def hash_buckets(weights: list[int]) -> list[int]:
    """Buckets per hash-pipe member, proportional to its weight, at most HASH_BUCKETS in all, at least 1 each."""
    if not weights:
        return []
    g = math.gcd(*weights)
    units = [w // g for w in weights]
    if sum(units) <= HASH_BUCKETS:
        return units
    scaled = [max(1, (w * HASH_BUCKETS) // sum(weights)) for w in weights]
    while sum(scaled) > HASH_BUCKETS:
        scaled[scaled.index(max(scaled))] -= 1
    return scaled
