"""Every bad input a new user tried, through the real CLI (`metaagentx.cli.main`, the console
script's entry point; in-process, to pay for torch's import once): one line naming the problem
and the fix, exit code 2, no traceback, and nothing on disk changed.

The cases are the ones reported in use: unreadable models, missing devices, bad ports, missing
optional packages, refused overwrites, paths that do not exist, names that are not registered.
`--debug` shows the traceback that the one line replaces (checked on the installed script, in a
subprocess, as typed in a shell).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from metaagentx.cli import main
from metaagentx.tiny import build_tiny


@dataclass(frozen=True)
class Case:
    name: str
    argv: Callable[[Path], list[str]]  # root -> arguments
    expected: str  # a fragment of the one error line
    block: str = ""  # modules to hide (comma-separated)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tree of things users point commands at: a model, a broken model, an earlier run..."""
    base = tmp_path_factory.mktemp("cli-errors")
    model = build_tiny(base / "model", size="nano", vocab_size=700, seed=0)
    broken = base / "broken"
    shutil.copytree(model, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    (base / "a-file.txt").write_text("not a folder\n")
    run = base / "earlier-run"
    (run / "checkpoints" / "step-00000002").mkdir(parents=True)
    (run / "checkpoints" / "step-00000002" / "COMPLETE").write_text("{}")
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    metrics_only = base / "metrics-only"
    metrics_only.mkdir()
    (metrics_only / "metrics.jsonl").write_text('{"step": 1}\n')
    (base / "notes.jsonl").write_text('{"my": "own data"}\n')
    (base / "evals" / "eval").mkdir(parents=True)
    (base / "evals" / "eval" / "after_rl.json").write_text("{}")
    (base / "rollouts").mkdir()
    (base / "rollouts" / "rollout.jsonl").write_text("{}\n")
    (base / "photos").mkdir()
    (base / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    config = {"model": {"path": str(model)}, "output_dir": str(base / "unused")}
    (base / "config.yaml").write_text(json.dumps(config))
    return base


def _cfg(root: Path, *overrides: str) -> list[str]:
    return [str(root / "config.yaml"), *overrides]


CASES = [
    Case(
        "truncated weights, generate",
        lambda r: ["generate", "--model", str(r / "broken"), "--prompt", "hi"],
        "truncated or corrupt",
    ),
    Case(
        "truncated weights, serve-model",
        lambda r: ["serve-model", "--model", str(r / "broken"), "--port", "0"],
        "truncated or corrupt",
    ),
    Case(
        "a device this torch lacks",
        lambda r: ["generate", "--model", str(r / "model"), "--prompt", "hi", "--device", "cuda"],
        "not available",
    ),
    Case(
        "an unknown dtype",
        lambda r: ["design", "--model", str(r / "model"), "--question", "q", "--dtype", "fp8"],
        "unknown dtype 'fp8'",
    ),
    Case(
        "a port out of range",
        lambda r: ["serve-model", "--model", str(r / "model"), "--port", "99999"],
        "out of range",
    ),
    Case(
        "wandb asked for but not installed",
        lambda r: [
            "train",
            *_cfg(r, f"output_dir={r / 'wandb-run'}", "logging.wandb_project=demo"),
        ],
        "pip install",
        block="wandb",
    ),
    Case(
        "tiny build over a file",
        lambda r: ["tiny", "build", "--out", str(r / "a-file.txt")],
        "is a file",
    ),
    Case(
        "tiny build over a trained model",
        lambda r: ["tiny", "build", "--out", str(r / "model")],
        "--overwrite",
    ),
    Case(
        "fresh train over an earlier run's checkpoints",
        lambda r: ["train", *_cfg(r, f"output_dir={r / 'earlier-run'}")],
        "trainer.resume=true",
    ),
    Case(
        "fresh train over an earlier run's metrics",
        lambda r: ["train", *_cfg(r, f"output_dir={r / 'metrics-only'}")],
        "already holds an earlier run",
    ),
    Case(
        "a misspelt local model path",
        lambda r: ["generate", "--model", str(r / "modle"), "--prompt", "hi"],
        "does not exist",
    ),
    Case(
        "an absolute model path that does not exist",
        lambda r: ["generate", "--model", "/nonexistent", "--prompt", "hi"],
        "does not exist",
    ),
    Case(
        "a registered dataset without its file",
        lambda r: ["data", "show", "humaneval"],
        "humaneval",
    ),
    Case("a misspelt registered dataset", lambda r: ["data", "show", "aime2042"], "did you mean"),
    Case(
        "sft collect into an unrelated file",
        lambda r: ["sft", "collect", *_cfg(r, f"sft.data={r / 'notes.jsonl'}")],
        "not written by `sft collect`",
    ),
    Case(
        "single_agent mode with designs that lack it",
        lambda r: [
            "eval",
            *_cfg(
                r,
                f"output_dir={r / 'eval-out'}",
                "eval.modes=[single_agent]",
                "rollout.designs_dir=" + _sft_designs(),
            ),
        ],
        "fixed:single",
    ),
    Case(
        "eval over an earlier evaluation's label",
        lambda r: ["eval", *_cfg(r, f"output_dir={r / 'evals'}"), "--label", "after_rl"],
        "--overwrite",
    ),
    Case(
        "rollout over an earlier rollout",
        lambda r: ["rollout", *_cfg(r), "--out", str(r / "rollouts")],
        "--overwrite",
    ),
    Case(
        "quickstart into an unrelated folder",
        lambda r: ["quickstart", "--out", str(r / "photos"), "--fast"],
        "--overwrite",
    ),
    Case(
        "export over a non-empty folder",
        lambda r: ["export", str(r / "earlier-run"), "--out", str(r / "photos")],
        "not empty",
    ),
    Case(
        "a config file that does not exist", lambda r: ["train", str(r / "nope.yaml")], "nope.yaml"
    ),
]


def _sft_designs() -> str:
    from importlib import resources

    return str(resources.files("metaagentx") / "sft" / "designs")


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def _cli(argv: list[str], block: str, monkeypatch, capsys) -> tuple[int, str, str]:
    """Run `metaagentx ARGV` as the console script does; (exit code, stdout, stderr)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.delenv("METAAGENTX_DEBUG", raising=False)
    for name in filter(None, block.split(",")):
        monkeypatch.setitem(sys.modules, name, None)  # an optional package not installed
    monkeypatch.setattr(sys, "argv", ["metaagentx", *argv])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_bad_input_ends_in_one_line_and_exit_2_and_changes_nothing(
    case: Case, root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    before = _snapshot(root)
    code, out, err = _cli(case.argv(root), case.block, monkeypatch, capsys)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err + out
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and case.expected in errors[0], err
    assert len(errors[0]) < 400, errors[0]  # one line, not a wrapped dump
    assert _snapshot(root) == before


def test_the_installed_script_gives_one_line_and_debug_the_traceback(root: Path):
    script = shutil.which("metaagentx")
    if script is None:
        pytest.skip("the metaagentx console script is not on PATH")
    argv = [script, "tiny", "build", "--out", str(root / "a-file.txt")]
    env = {k: v for k, v in os.environ.items() if k != "METAAGENTX_DEBUG"}
    plain = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert plain.stderr.strip().startswith("error: tiny model folder")
    flagged = subprocess.run(
        [script, "--debug", *argv[1:]], capture_output=True, text=True, env=env, timeout=120
    )
    assert flagged.returncode == 2 and "Traceback" in flagged.stderr
    assert flagged.stderr.rstrip().splitlines()[-1] == plain.stderr.strip()
    by_env = subprocess.run(
        argv, capture_output=True, text=True, env={**env, "METAAGENTX_DEBUG": "1"}, timeout=120
    )
    assert by_env.returncode == 2 and "Traceback" in by_env.stderr
