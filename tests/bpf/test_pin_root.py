"""The pin root: created when absent, refused with the path named when it cannot hold pins,
and nothing left behind by an open that failed."""
from __future__ import annotations

import os
import subprocess

import pytest

from pyflow.errors import NativeError
from pyflow.instance import Instance


def _open(name, pin_root):
    return Instance("ebpf", name, pin_root=pin_root, max_entries=256)


def _refusal(name, pin_root) -> str:
    with pytest.raises(NativeError) as exc:
        _open(name, pin_root)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_absent_pin_root_is_created_root_only_and_destroy_empties_it(unique_prefix, tmp_path):
    bpffs = tmp_path / "bpffs"
    bpffs.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], check=True)
    try:
        root = bpffs / "a" / "b" / "pyflow"
        inst = _open(unique_prefix, str(root))
        try:
            for d in (bpffs / "a", root, root / unique_prefix):
                assert (os.stat(d).st_mode & 0o777) == 0o700, d
            assert (root / unique_prefix / "entries").exists()
            inst.destroy()
            assert not (root / unique_prefix).exists()
        finally:
            inst.close()
    finally:
        subprocess.run(["umount", str(bpffs)], check=True)


def test_a_file_in_the_way_is_named(unique_prefix, tmp_path):
    bpffs = tmp_path / "bpffs"
    bpffs.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], check=True)
    try:
        # bpffs holds only pins and directories: a pinned map stands in for "a file"
        first = _open(unique_prefix, str(bpffs / "pyflow"))
        try:
            blocker = bpffs / "pyflow" / unique_prefix / "entries"
            msg = _refusal("other", str(blocker))
            assert str(blocker) in msg and "not a directory" in msg
        finally:
            first.destroy()
            first.close()
    finally:
        subprocess.run(["umount", str(bpffs)], check=True)


def test_a_pin_root_off_bpffs_is_refused_and_nothing_is_created(unique_prefix, tmp_path):
    plain = tmp_path / "not-bpffs"
    msg = _refusal(unique_prefix, str(plain))
    assert str(plain) in msg and "bpffs" in msg
    # the pin root itself may be created; no instance directory is
    assert not (plain / unique_prefix).exists()


def test_a_read_only_bpffs_is_refused(unique_prefix, tmp_path):
    bpffs = tmp_path / "ro"
    bpffs.mkdir()
    subprocess.run(["mount", "-t", "bpf", "-o", "ro", "bpf", str(bpffs)], check=True)
    try:
        msg = _refusal(unique_prefix, str(bpffs))
        assert str(bpffs) in msg and "read-only" in msg.lower()
        msg = _refusal(unique_prefix, str(bpffs / "pyflow"))
        assert str(bpffs / "pyflow") in msg and "read-only" in msg.lower()
    finally:
        subprocess.run(["umount", str(bpffs)], check=True)


def test_a_failed_first_load_leaves_no_instance_directory(unique_prefix, tmp_path):
    bpffs = tmp_path / "bpffs"
    bpffs.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], check=True)
    try:
        with pytest.raises(NativeError):
            Instance("ebpf", unique_prefix, pin_root=str(bpffs), obj_dir=str(tmp_path))  # no datapath.bpf.o there
        # a new bpffs holds only the kernel's own maps.debug / progs.debug
        assert [n for n in os.listdir(bpffs) if not n.endswith('.debug')] == []
    finally:
        subprocess.run(["umount", str(bpffs)], check=True)
