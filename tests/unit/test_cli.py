"""The command line without privileges: flags, exit codes, one-line errors, the control socket."""
from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from pyflow import __version__
from pyflow.cli import cli, parse_log_level
from pyflow.control import ControlClient, ControlServer
from pyflow.errors import ConfigError, UsageError

CONF = Path(__file__).resolve().parents[2] / "conf"
RESUBMIT = str(CONF / "resubmit.json")


def invoke(*args):
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_version():
    code, out, _ = invoke("--version")
    assert code == 0 and out.strip() == f"pyflow {__version__}"


def test_validate_ok_text_and_json():
    code, out, err = invoke("validate", "-j", RESUBMIT)
    assert code == 0 and "valid" in out and not err
    code, out, _ = invoke("validate", "-j", RESUBMIT, "-o", "json")
    data = json.loads(out)
    assert code == 0 and data["valid"] is True and data["pipes"] == 3 and data["miss_policies"] == 1


def test_validate_bad_config_names_the_json_path(tmp_path):
    cfg = json.loads(Path(RESUBMIT).read_text())
    cfg["pipes"][1]["fwd"] = "port:nowhere"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(cfg))
    code, out, err = invoke("validate", "-j", str(bad))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "pipes[1]" in lines[0] and "nowhere" in lines[0]


def test_missing_config_file():
    code, _, err = invoke("validate", "-j", "/nonexistent/pyflow.json")
    assert code == 2 and "/nonexistent/pyflow.json" in err and len(err.strip().splitlines()) == 1


def test_doca_without_sdk_says_what_to_use_instead():
    from pyflow.native import backend_available

    if backend_available("doca")[0]:
        pytest.skip("this build has DOCA")
    code, out, err = invoke("run", "--backend", "doca", "-j", RESUBMIT)
    assert code == 3 and out == ""
    assert "DOCA" in err and "--backend ebpf" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, flag", [
    (["--backend", "nope"], "--backend"),
    (["--backend", "ebpf", "-l", "35"], "--log-level"),
    (["--backend", "ebpf", "--sdk-log-level", "loud"], "--sdk-log-level"),
    (["--backend", "ebpf", "--port", "uplink"], "--port"),
    (["--backend", "ebpf", "--port", "upllink=lo"], "--port"),
    (["--backend", "ebpf", "--port", "uplink=no-such-if0"], "--port"),
    (["--backend", "ebpf", "--stats-interval", "0"], "--stats-interval"),
    (["--backend", "ebpf", "--instance", "a/b"], "--instance"),
    (["--backend", "ebpf", "--", "-l", "0-1"], "'--'"),
])
def test_bad_run_flags_exit_2_with_one_line(args, flag):
    code, out, err = invoke("run", "-j", RESUBMIT, *args)
    assert code == 2, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0], lines


def test_unknown_port_suggests_the_right_name():
    _, _, err = invoke("run", "--backend", "ebpf", "-j", RESUBMIT, "--port", "upllink=lo")
    assert "uplink" in err


def test_unbound_port_names_the_config_path(tmp_path):
    # resubmit.json binds no interfaces: without --port the first port is reported.
    code, _, err = invoke("run", "--backend", "ebpf", "-j", RESUBMIT, "--port", "vf0=lo")
    assert code == 2 and "ports[0]" in err and "--port uplink=" in err


@pytest.mark.parametrize("text, level", [("info", 50), ("WARN", 40), ("70", 70), ("disable", 10), (20, 20)])
def test_log_levels_accept_names_and_doca_numbers(text, level):
    assert parse_log_level(text) == level


def test_log_level_rejects_other_numbers():
    with pytest.raises(UsageError, match="--log-level"):
        parse_log_level("55")


def test_entry_commands_without_an_instance(tmp_path):
    code, _, err = invoke("counters", "--instance", "pfl-absent-x")
    assert code == 2 and "pfl-absent-x" in err


def test_control_socket_round_trip(tmp_path):
    calls = []

    def add(args):
        calls.append(args)
        if args.get("bad"):
            raise ConfigError("entry.match", "ipv4.src expects an IPv4 address")
        return {"id": 7}

    path = str(tmp_path / "t.sock")
    server = ControlServer(path, {"entry_add": add})
    server.start()
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        client = ControlClient("t", run_dir=str(tmp_path))
        assert client.request("entry_add", pipe="p") == {"id": 7}
        with pytest.raises(ConfigError, match="entry.match"):
            client.request("entry_add", bad=True)
        with pytest.raises(UsageError, match="unknown op"):
            try:
                client.request("nope")
            except Exception as exc:  # the server answers exit_code 2 -> ConfigError-like; check the text
                raise UsageError(str(exc)) from exc
        # Garbage on the wire gets an error line, not a dead server.
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(b"not json\n")
        reply = json.loads(s.makefile().readline())
        s.close()
        assert reply["ok"] is False and "not JSON" in reply["error"]
        assert calls == [{"pipe": "p"}, {"bad": True}]
        # A second server on the same live socket is refused.
        with pytest.raises(UsageError, match="already serving"):
            ControlServer(path, {}).start()
    finally:
        server.stop()
    assert not os.path.exists(path)
