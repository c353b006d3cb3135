"""Request lines the control server must refuse as bad input, not as an internal error."""
from __future__ import annotations

from pyflow.control import ControlServer


def test_a_line_that_is_not_utf8_is_bad_input():
    server = ControlServer("/nonexistent.sock", {"status": lambda args: {}})
    reply = server.handle_line(b"\xbc8\xa9\xf0 not text\n")
    assert reply["ok"] is False and reply["exit_code"] == 2
    assert reply["error"].startswith("control request: not UTF-8 text"), reply


def test_json_that_is_not_a_request_is_bad_input():
    server = ControlServer("/nonexistent.sock", {"status": lambda args: {}})
    for line in (b"[1]", b'{"op": 5}', b'{"op": "status", "args": [1]}', b"{"):
        reply = server.handle_line(line)
        assert reply["ok"] is False and reply["exit_code"] == 2, (line, reply)
