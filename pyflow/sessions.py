"""Clone sessions of a running instance over the control API (the P4 PSA clone-E2E example's
session-create, session-add-member, session-delete-member), as a part of the Controller."""
from __future__ import annotations

import logging

from .errors import ConfigError, UsageError

log = logging.getLogger("pyflow")


class SessionOps:
    """The control API's session_* requests; needs the Controller's cfg, instance and sessions."""

    def _session_id(self, args, must_exist: bool = True) -> int:
        from .native import lib

        sid = args.get("id")
        if not isinstance(sid, int) or isinstance(sid, bool) or not 0 <= sid < lib.PF_MAX_SESSIONS:
            raise UsageError(f"session: expected an id 0..{lib.PF_MAX_SESSIONS - 1}, got {sid!r}")
        if must_exist and sid not in self.sessions:
            raise ConfigError(f"session {sid}", "no such session (create it with 'pyflow session create')")
        return sid

    def _session_write(self, sid: int, members: list[dict]) -> None:
        from .compiler import session_struct

        port_ids = self.cfg.port_ids()
        self.instance.session_set(sid, session_struct(
            [(port_ids[m["port"]], m["instance"], m["class_of_service"], m["truncate"]) for m in members]))
        self.sessions[sid] = members

    def _op_session_create(self, args):
        sid = self._session_id(args, must_exist=False)
        if sid in self.sessions:
            raise ConfigError(f"session {sid}", "already exists")
        self._session_write(sid, [])
        log.info("Session %d created", sid)
        return {"id": sid, "members": []}

    def _op_session_add_member(self, args):
        from .native import lib

        sid = self._session_id(args)
        port, ranges = args.get("port"), {"instance": 0xFFFF, "class_of_service": 0xFF, "truncate": 0xFFFFFFFF}
        ports = [p.name for p in self.cfg.ports]
        if port not in ports:
            raise ConfigError("port", f"no port {port!r} (ports: {', '.join(ports)})")
        member = {"port": port}
        for key, top in ranges.items():
            value = args.get(key, 0)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
                raise UsageError(f"{key}: expected 0..{top}, got {value!r}")
            member[key] = value
        members = [m for m in self.sessions[sid]
                   if (m["port"], m["instance"]) != (port, member["instance"])] + [member]
        if len(members) > lib.PF_MAX_SESSION_MEMBERS:
            raise ConfigError(f"session {sid}", f"at most {lib.PF_MAX_SESSION_MEMBERS} members")
        self._session_write(sid, members)
        log.info("Session %d: member port %s instance %d added", sid, port, member["instance"])
        return {"id": sid, "members": members}

    def _op_session_delete_member(self, args):
        sid = self._session_id(args)
        port, instance = args.get("port"), args.get("instance", 0)
        members = [m for m in self.sessions[sid] if (m["port"], m["instance"]) != (port, instance)]
        if len(members) == len(self.sessions[sid]):
            raise ConfigError(f"session {sid}", f"has no member port {port!r} instance {instance!r}")
        self._session_write(sid, members)
        log.info("Session %d: member port %s instance %d removed", sid, port, instance)
        return {"id": sid, "members": members}

    def _op_session_list(self, args):
        return [{"id": sid, "members": members} for sid, members in sorted(self.sessions.items())]
