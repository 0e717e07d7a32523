"""A benchmark result records its command so that a reviewer can paste it back into a shell: arguments
with spaces or quotes survive the round trip (benchmarks/report.py)."""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import report  # noqa: E402


def test_recorded_command_round_trips_through_a_shell():
    argv = ["--budget", "sc-cdm-paper-photo's codec, 1,600 steps", "--singles", "runs/c{c}", "--limit", "24"]
    m = report.meta("benchmarks/rate_cifar.py", argv, time.time())
    assert shlex.split(m["command"]) == ["python", "benchmarks/rate_cifar.py", *argv]
