"""Control API of a running instance: a Unix socket, one JSON object per line each way.

Request:  {"op": "counters" | "entry_add" | "entry_del" | "entry_list" | "status" | "session_create" |
          "session_add_member" | "session_delete_member" | "session_list", "args": {...}}
Reply:    {"ok": true, "result": ...}  or  {"ok": false, "error": "...", "exit_code": N[, "index": I]}

A connection stays open for as many requests as the client sends; replies come back in order, one
line each. `entry_add` takes one entry ({"pipe", "entry", "replace"}) or a batch
({"entries": [{"pipe", "entry", "replace"}, ...]}); a batch is all or nothing, and an error about
one of its entries carries that entry's position as "index".

The socket lives at /run/pyflow/<instance>.sock, mode 0600: only root may
program the datapath.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import stat
import threading
from typing import Callable

from .errors import ConfigError, PyflowError, UsageError
from .paths import RUN_DIR, ensure_private_dir
MAX_LINE = 64 << 20   # one request; a batch of ~500k entries fits

log = logging.getLogger("pyflow.control")


def socket_path(instance: str, run_dir: str = RUN_DIR) -> str:
    return os.path.join(run_dir, f"{instance}.sock")


class ControlServer:
    """Serves requests on a thread; handlers run one at a time (they share the instance)."""

    def __init__(self, path: str, handlers: dict[str, Callable[[dict], object]]):
        self.path = path
        self.handlers = handlers
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        ensure_private_dir(os.path.dirname(self.path), "control socket directory")
        if os.path.exists(self.path):
            if _is_live(self.path):
                raise UsageError(f"--instance: another pyflow is already serving {self.path}")
            os.unlink(self.path)  # left by a process that died
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # no window in which the socket is world-accessible
        try:
            sock.bind(self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, stat.S_IRUSR | stat.S_IWUSR)
        sock.listen(8)
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="pyflow-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        if self._sock:
            self._sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as f:
            for line in f:
                if len(line) > MAX_LINE:
                    reply = {"ok": False, "error": "request too long", "exit_code": 2}
                else:
                    reply = self.handle_line(line)
                try:
                    f.write(json.dumps(reply).encode() + b"\n")
                    f.flush()
                except OSError:
                    return

    def handle_line(self, line: bytes) -> dict:
        try:
            req = json.loads(line)
            if not isinstance(req, dict) or not isinstance(req.get("op"), str):
                raise UsageError('control request: expected {"op": NAME, "args": {...}}')
            handler = self.handlers.get(req["op"])
            if handler is None:
                raise UsageError(f"control request: unknown op {req['op']!r} "
                                 f"(expected one of {', '.join(sorted(self.handlers))})")
            args = req.get("args") or {}
            if not isinstance(args, dict):
                raise UsageError("control request: args must be an object")
            with self._lock:
                return {"ok": True, "result": handler(args)}
        except json.JSONDecodeError as exc:
            return {"ok": False, "error": f"control request: not JSON ({exc})", "exit_code": 2}
        except UnicodeDecodeError as exc:  # json.loads(bytes) decodes before it parses
            return {"ok": False, "error": f"control request: not UTF-8 text ({exc.reason} at byte {exc.start})",
                    "exit_code": 2}
        except PyflowError as exc:
            reply = {"ok": False, "error": str(exc), "exit_code": exc.exit_code}
            if isinstance(getattr(exc, "index", None), int):
                reply["index"] = exc.index
            return reply
        except Exception as exc:  # a bug must not kill the server thread
            log.exception("control request failed")
            return {"ok": False, "error": f"internal error: {exc}", "exit_code": 1}


class RemoteError(PyflowError):
    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class ControlClient:
    """Talks to a running instance.

    Used directly, every request opens and closes its own connection. As a context manager
    (`with ControlClient(name) as client:`) one connection carries every request until the block ends,
    which saves a connect and a server thread per request.
    """

    def __init__(self, instance: str, run_dir: str = RUN_DIR, timeout: float = 10.0):
        self.instance = instance
        self.path = socket_path(instance, run_dir)
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._file = None

    def __enter__(self) -> "ControlClient":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def connect(self) -> None:
        if self._sock is None:
            self._sock = self._open()
            self._file = self._sock.makefile("rwb")

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _open(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except FileNotFoundError:
            sock.close()
            raise UsageError(f"--instance: no running pyflow instance {self.instance!r} "
                             f"({self.path} does not exist)") from None
        except PermissionError:
            sock.close()
            raise UsageError(f"--instance: permission denied on {self.path} (the control socket is root-only)") \
                from None
        except ConnectionRefusedError:
            sock.close()
            raise UsageError(f"--instance: instance {self.instance!r} is not running (stale {self.path})") from None
        return sock

    def request(self, op: str, timeout: float | None = None, **args):
        """Send one request and wait for its reply; raises the remote error (with .index for a batch)."""
        if self._file is not None:
            return self._exchange(self._sock, self._file, op, args, timeout)
        with self._open() as sock, sock.makefile("rwb") as f:
            return self._exchange(sock, f, op, args, timeout)

    def _exchange(self, sock, f, op: str, args: dict, timeout: float | None):
        sock.settimeout(timeout or self.timeout)
        f.write(json.dumps({"op": op, "args": args}).encode() + b"\n")
        f.flush()
        line = f.readline()
        if not line:
            raise RemoteError(f"instance {self.instance!r} closed the control connection")
        reply = json.loads(line)
        if not reply.get("ok"):
            code = reply.get("exit_code", 1)
            if code == 2:
                exc = ConfigError("", reply.get("error", "request refused"))
            else:
                exc = RemoteError(reply.get("error", "request failed"), code)
            exc.index = reply.get("index")
            raise exc
        return reply.get("result")


def _is_live(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()
