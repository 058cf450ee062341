"""scripts/test.sh runs every stage and ends with one summary table.

Its functions are sourced into a bash process and driven with fake stages, so
these tests cost milliseconds, not a CI run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO

SCRIPT = REPO / "scripts" / "test.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _bash(body: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f'source "{SCRIPT}"\n{body}'], cwd=tmp_path,
                          capture_output=True, text=True)


def _rows(stdout: str) -> dict[str, tuple[str, int]]:
    """stage -> (result, seconds), read from the summary table."""
    table = stdout.split("== summary\n", 1)[1].splitlines()
    assert re.fullmatch(r"stage\s+result\s+duration", table[0])
    rows = {}
    for line in table[1:]:
        found = re.fullmatch(r"(.+?)\s{2,}(ok|FAILED \(exit \d+\))\s+(\d+)s", line)
        if found:
            rows[found[1]] = (found[2], int(found[3]))
    return rows


def _results(stdout: str) -> dict[str, str]:
    return {name: result for name, (result, _) in _rows(stdout).items()}


def test_a_failing_stage_does_not_stop_the_later_ones(tmp_path):
    result = _bash("""
first() { echo first-ran; }
broken() { echo before; false; echo after-the-failure; }
last() { echo last-ran; }
stage "one" first
stage "two, broken" broken
stage "three" last
summary
""", tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "first-ran" in out and "before" in out and "last-ran" in out
    assert "after-the-failure" not in out  # a stage stops at its own first failing command
    assert _results(out) == {"one": "ok", "two, broken": "FAILED (exit 1)", "three": "ok"}
    assert out.rstrip().endswith("1 of 3 stages failed")


def test_all_stages_passing_exits_zero(tmp_path):
    result = _bash('stage a true\nstage "b c" true\nsummary', tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _results(result.stdout) == {"a": "ok", "b c": "ok"}
    assert result.stdout.rstrip().endswith("all 2 stages passed")


def test_a_stage_records_its_exit_status_and_duration(tmp_path):
    result = _bash('stage slow bash -c "sleep 1.2; exit 3"\nsummary', tmp_path)
    assert result.returncode == 1
    (status, seconds), = _rows(result.stdout).values()
    assert status == "FAILED (exit 3)" and seconds >= 1


def test_pytest_collecting_nothing_is_a_failure(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\n[ \"$1 $2\" = '-m pytest' ] || exit 99\nexit \"$PYTEST_RC\"\n")
    fake.chmod(0o755)
    result = _bash(f'PYTEST_RC=5 stage none run_pytest "{fake}"\n'
                   f'PYTEST_RC=0 stage passed run_pytest "{fake}"\n'
                   f'PYTEST_RC=1 stage failed run_pytest "{fake}"\nsummary', tmp_path)
    assert result.returncode == 1
    assert "pytest collected no tests" in result.stderr
    assert _results(result.stdout) == {"none": "FAILED (exit 1)", "passed": "ok", "failed": "FAILED (exit 1)"}


def test_sourcing_runs_no_stage(tmp_path):
    result = _bash("echo sourced; declare -F main stage summary run_pytest >/dev/null", tmp_path)
    assert result.returncode == 0 and result.stdout == "sourced\n"
