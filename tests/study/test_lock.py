"""One `sigkit study run` per study folder: a second run stops at once, or waits."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time

import pytest
from typer.testing import CliRunner

from toolkit.study._stages import StudyInUseError, study_lock
from toolkit.study.run import run_study

HOLDER = """
import sys
from pathlib import Path
from toolkit.study._stages import study_lock
with study_lock(Path(sys.argv[1]), echo=lambda line: None):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def study(tiny_cohort, tmp_path):
    target = tmp_path / "study"
    shutil.copytree(tiny_cohort, target / "cohort")
    return target


@pytest.fixture
def holder(study):
    """Another process holding the study's lock until its stdin is closed."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(study)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline() == "locked\n"
    yield process
    process.kill()
    process.wait()
    process.stdin.close()
    process.stdout.close()


def test_second_run_stops_at_once_naming_the_other_run(study, holder):
    start = time.perf_counter()
    with pytest.raises(StudyInUseError) as caught:
        run_study(study, weights="random", workers=0, report=False, echo=lambda line: None)
    assert time.perf_counter() - start < 5
    message = str(caught.value)
    assert message.startswith(
        f"study folder {study} is in use by another sigkit run (pid {holder.pid}, started at "
    )
    assert message.endswith(
        "); wait for it to finish, or run again with --wait to start when it has"
    )
    assert not (study / "crops").exists()
    assert not (study / ".sigkit" / "stages").exists()


def test_cli_refuses_a_second_run(study, holder):
    from toolkit.cli import app

    result = CliRunner().invoke(app, ["study", "run", str(study), "--weights", "random"])
    assert result.exit_code == 1
    assert f"is in use by another sigkit run (pid {holder.pid}, started at" in result.stderr


def test_wait_starts_when_the_other_run_ends(study, holder):
    lines: list[str] = []
    threading.Timer(1.0, holder.stdin.close).start()
    start = time.perf_counter()
    with study_lock(study, wait=True, echo=lines.append):
        waited = time.perf_counter() - start
    assert waited >= 0.9
    (line,) = lines
    assert line.startswith(
        f"  waiting for the other sigkit run on {study} (pid {holder.pid}, started at "
    )
    assert holder.wait(timeout=10) == 0


def test_lock_left_by_a_killed_run_does_not_block(study, holder):
    holder.kill()
    holder.wait()
    assert str(holder.pid) in (study / ".sigkit" / "lock").read_text()
    with study_lock(study, echo=lambda line: None):
        pass


def test_lock_is_released_when_the_run_raises(study):
    with pytest.raises(ZeroDivisionError), study_lock(study):
        1 / 0  # noqa: B018
    with study_lock(study):
        assert (study / ".sigkit" / "lock").read_text().startswith('{"pid": ')
    assert (study / ".sigkit" / "lock").read_text() == ""


def test_cli_wait_runs_once_the_other_run_ends(study, holder):
    """With --wait the run goes ahead when the lock is free: here to its pre-flight check,
    which refuses the tiny cohort's few events."""
    from toolkit.cli import app

    threading.Timer(1.0, holder.stdin.close).start()
    args = ["study", "run", str(study), "--weights", "random", "--wait"]
    result = CliRunner().invoke(app, args)
    assert "waiting for the other sigkit run" in result.stdout
    assert result.exit_code == 1
    assert "too few events in the training set" in result.stderr
