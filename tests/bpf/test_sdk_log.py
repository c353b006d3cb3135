"""--sdk-log-level: libbpf's own messages reach Python logging on their own logger and threshold."""
from __future__ import annotations

import logging

from pyflow.instance import Instance
from pyflow.native import lib, set_log_level, set_sdk_log_level


def _libbpf_lines(caplog, sdk_level: int, name: str) -> list[logging.LogRecord]:
    caplog.clear()
    set_log_level(lib.PF_LOG_INFO)
    set_sdk_log_level(sdk_level)
    try:
        with caplog.at_level(logging.DEBUG, logger="pyflow.sdk"):
            with Instance("ebpf", name, no_pin=True):
                pass
    finally:
        set_sdk_log_level(lib.PF_LOG_WARNING)
    return [r for r in caplog.records if r.getMessage().startswith("libbpf: ")]


def test_sdk_debug_lines_only_when_asked(caplog, unique_prefix):
    quiet = _libbpf_lines(caplog, lib.PF_LOG_WARNING, unique_prefix + "q")
    chatty = _libbpf_lines(caplog, lib.PF_LOG_DEBUG, unique_prefix + "d")
    assert not [r for r in quiet if r.levelno < logging.WARNING]
    assert chatty and all(r.name == "pyflow.sdk" for r in chatty)
