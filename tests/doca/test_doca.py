"""DOCA tier: runs only where the DOCA backend is available (BlueField / ConnectX with the SDK).

The probe in tests/conftest.py skips these with the backend's own reason; everywhere
else the doca backend's refusal itself is covered by tests/unit/test_cli.py.
"""
from __future__ import annotations

from pathlib import Path

CONF = Path(__file__).resolve().parents[2] / "conf" / "resubmit.json"


def test_resubmit_pipes_install_on_doca():
    from pyflow.compiler import compile_program
    from pyflow.config import load_config
    from pyflow.instance import Instance

    program = compile_program(load_config(CONF), {"uplink": "0", "vf0": "1"})
    with Instance("doca", "pyflow-doca-test", fresh=True, no_pin=True) as inst:
        ids = program.apply(inst)
        listed = {info.entry.id for info in inst.entry_list(program.pipe("root").id)}
        assert {ids["root_net_to_host"], ids["root_host_to_net_vf0"]} <= listed
