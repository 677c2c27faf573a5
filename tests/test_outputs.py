"""Writes that never destroy what they did not make: refused targets, atomic replacement, and
a fresh training run that refuses an earlier run's outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from metaagentx.errors import UserError
from metaagentx.outputs import OutputExists, atomic_dir, check_output_dir
from metaagentx.train.checkpoint import (
    CheckpointError,
    clear_run_outputs,
    refuse_to_overwrite,
)


def test_a_file_or_a_non_empty_folder_is_refused_unless_overwrite(tmp_path: Path):
    check_output_dir(tmp_path / "new", overwrite=False, what="model")  # missing: fine
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty", overwrite=False, what="model")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExists, match="is a file"):
        check_output_dir(tmp_path / "file", overwrite=True, what="model")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "weights").write_text("trained")
    with pytest.raises(OutputExists, match=r"model .*full exists and is not empty; pass --x"):
        check_output_dir(tmp_path / "full", overwrite=False, what="model", fix="--x")
    check_output_dir(tmp_path / "full", overwrite=True, what="model")
    assert issubclass(OutputExists, UserError) and issubclass(OutputExists, FileExistsError)


def test_atomic_dir_keeps_the_old_folder_when_the_write_fails(tmp_path: Path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "weights").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "weights").write_text("half")
        raise RuntimeError("interrupted")
    assert (out / "weights").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no partial left
    with atomic_dir(out) as tmp:
        (tmp / "weights").write_text("new")
    assert (out / "weights").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def _checkpoint(run: Path, step: int) -> None:
    path = run / "checkpoints" / f"step-{step:08d}"
    path.mkdir(parents=True)
    (path / "COMPLETE").write_text("{}")


def test_a_fresh_run_refuses_any_earlier_output_and_a_resume_needs_a_checkpoint(tmp_path: Path):
    run = tmp_path / "run"
    refuse_to_overwrite(run, "trainer.resume")  # nothing there yet
    run.mkdir()
    (run / "config.yaml").write_text("seed: 0\n")  # a config alone is not a run's output
    refuse_to_overwrite(run, "trainer.resume")
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    with pytest.raises(CheckpointError, match=r"\(metrics\.jsonl\); it has no checkpoint"):
        refuse_to_overwrite(run, "trainer.resume")
    with pytest.raises(CheckpointError, match="no checkpoint to continue from"):
        refuse_to_overwrite(run, "trainer.resume", resume=True)  # nothing to resume: fresh
    _checkpoint(run, 2)
    with pytest.raises(CheckpointError, match=r"step-00000002\); set trainer\.resume=true"):
        refuse_to_overwrite(run, "trainer.resume")
    refuse_to_overwrite(run, "trainer.resume", resume=True)
    (run / "samples").mkdir()
    (run / "model").mkdir()
    clear_run_outputs(run)
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "model"]
    refuse_to_overwrite(run, "trainer.resume")
