"""The C core's user-space parser and actions (bpf/include/pyflow/packet.h) and the miss policy engine
(native/src/miss/learn.c) under AddressSanitizer and UndefinedBehaviorSanitizer, on the frame fuzz
corpus (tests/drill/frames.py), through a plain driver (tests/drill/sanitize/driver.c).

Every frame is parsed (whole and with the MPEG-TS class deferred, which must agree), rewritten by one
of several action chains in an exactly sized buffer, and handed to the learner as a miss, one at a
time or in batches, with a table that fills, a rate limit that sheds and sweeps that age. Any
sanitizer report aborts the driver; the parser's accept/reject count must equal the Python model's.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import struct
import subprocess

import pytest

from tests.drill import frames as model

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("PYFLOW_FUZZ_SEED", "20261203"))
FRAMES = int(os.environ.get("PYFLOW_FUZZ_FRAMES", "1000000"))
SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def test_parser_actions_and_learner_are_clean_under_asan_and_ubsan(tmp_path, figures):
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.skip("gcc is not installed")
    driver = tmp_path / "driver"
    build = subprocess.run([gcc, "-O1", "-g", *SAN, "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
                            f"-I{ROOT}/native/src", f"-I{ROOT}/native/include", f"-I{ROOT}/bpf/include",
                            str(ROOT / "tests/drill/sanitize/driver.c"), "-o", str(driver), "-lpthread"],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr

    corpus = tmp_path / "corpus.bin"
    fuzzer, parsed = model.Fuzzer(SEED), 0
    with open(corpus, "wb") as f:
        for frame in model.base_frames() + [fuzzer.frame() for _ in range(FRAMES)]:
            f.write(struct.pack("<H", len(frame)) + frame)
            parsed += model.parse(frame) is not None
    total = FRAMES + len(model.base_frames())

    r = subprocess.run([str(driver), str(corpus)], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
                            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    assert r.returncode == 0, r.stderr[-4000:]
    assert "runtime error" not in r.stderr and "Sanitizer" not in r.stderr, r.stderr[-4000:]
    stats = dict(kv.split("=") for kv in r.stdout.split())
    stats = {k: int(v) for k, v in stats.items()}
    assert stats["frames"] == total and stats["received"] == total
    assert stats["parsed"] == parsed, f"C parser accepted {stats['parsed']}, the model {parsed}"
    # something of every path ran: installs, refusals or sheds, resubmits and ageing
    assert stats["installed"] > 0 and stats["shed_rate_limit"] > 0 and stats["refused_max_flows"] > 0
    assert stats["aged_out"] > 0
    assert stats["resubmitted"] > 0 and stats["acted"] > 0 and stats["act_failed"] > 0
    figures(f"ASan+UBSan: {total} corpus frames (seed {SEED}) parsed ({stats['parsed']} accepted, as the model), "
            f"acted on ({stats['acted']} rewritten, {stats['act_failed']} refused) and learned "
            f"({stats['installed']} installed, {stats['shed_rate_limit']} shed, {stats['refused_max_flows']} refused "
            f"at max_flows, {stats['aged_out']} aged, {stats['resubmitted']} resubmitted): no sanitizer report")
