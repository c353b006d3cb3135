"""The pin root: created when absent, refused with the path named when it cannot hold pins,
and nothing left behind by an open that failed."""
from __future__ import annotations

import os
import subprocess

import pytest

from pyflow.errors import NativeError
from pyflow.instance import Instance


@pytest.fixture
def bpffs(tmp_path):
    """A bpffs of the test's own; read-only when asked with mount_bpffs(ro=True)."""
    mounted = []

    def mount_bpffs(ro: bool = False):
        path = tmp_path / f"bpffs{len(mounted)}"
        path.mkdir()
        subprocess.run(["mount", "-t", "bpf", *(["-o", "ro"] if ro else []), "bpf", str(path)], check=True)
        mounted.append(path)
        return path

    yield mount_bpffs
    for path in mounted:
        subprocess.run(["umount", str(path)], check=True)


def _open(name, pin_root):
    return Instance("ebpf", name, pin_root=pin_root, max_entries=256)


def _refusal(name, pin_root) -> str:
    with pytest.raises(NativeError) as exc:
        _open(name, pin_root)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_absent_pin_root_is_created_root_only_and_destroy_empties_it(unique_prefix, bpffs):
    fs = bpffs()
    root = fs / "a" / "b" / "pyflow"
    inst = _open(unique_prefix, str(root))
    try:
        for d in (fs / "a", root, root / unique_prefix):
            assert (os.stat(d).st_mode & 0o777) == 0o700, d
        assert (root / unique_prefix / "entries").exists()
        inst.destroy()
        assert not (root / unique_prefix).exists()
    finally:
        inst.close()


def test_a_file_in_the_way_is_named(unique_prefix, bpffs):
    fs = bpffs()
    # bpffs holds only pins and directories: a pinned map stands in for "a file"
    first = _open(unique_prefix, str(fs / "pyflow"))
    try:
        blocker = fs / "pyflow" / unique_prefix / "entries"
        msg = _refusal("other", str(blocker))
        assert str(blocker) in msg and "not a directory" in msg
    finally:
        first.destroy()
        first.close()


def test_a_pin_root_off_bpffs_is_refused_and_nothing_is_created(unique_prefix, tmp_path):
    plain = tmp_path / "not-bpffs"
    msg = _refusal(unique_prefix, str(plain))
    assert str(plain) in msg and "bpffs" in msg
    # the pin root itself may be created; no instance directory is
    assert not (plain / unique_prefix).exists()


def test_a_read_only_bpffs_is_refused(unique_prefix, bpffs):
    fs = bpffs(ro=True)
    for root in (fs, fs / "pyflow"):
        msg = _refusal(unique_prefix, str(root))
        assert str(root) in msg and "read-only" in msg.lower()


def test_a_failed_first_load_leaves_no_instance_directory(unique_prefix, bpffs, tmp_path):
    fs = bpffs()
    with pytest.raises(NativeError):
        Instance("ebpf", unique_prefix, pin_root=str(fs), obj_dir=str(tmp_path))  # no datapath.bpf.o there
    # a new bpffs holds only the kernel's own maps.debug / progs.debug
    assert [n for n in os.listdir(fs) if not n.endswith(".debug")] == []
