"""Registered benchmark names: where each one's files live, and what to say when they don't.

A registered name resolves to files under the shared data folder (`METAAGENTX_DATA_DIR`, else a
`shared/data` folder beside the checkout). A name whose files are missing fails at once with the
path they belong at and how to get them; only a name with a `hub` fallback goes to the Hugging
Face Hub, and only when its local files are absent.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from metaagentx.tasks.errors import DatasetError, MissingDataError

DATA_DIR_ENV = "METAAGENTX_DATA_DIR"


@dataclass(frozen=True)
class DatasetSpec:
    """A registered benchmark: a file (or glob) per split under the data folder, its row format,
    optionally a Hugging Face source (`owner/name[:config]`) used when the files are absent, and
    how to get the files."""

    files: dict[str, str]
    format: str
    default_split: str
    hub: str | None = None
    how: str = "copy it from the project's shared data folder"


REGISTRY: dict[str, DatasetSpec] = {
    "aime2024": DatasetSpec({"test": "aime2024/aime.json"}, "aime", "test"),
    "aime2025": DatasetSpec({"test": "aime2025/test.jsonl"}, "aime", "test"),
    "aime_train": DatasetSpec({"train": "aime_1983_2023_train/aime.json"}, "aime", "train"),
    "olympiadbench": DatasetSpec(
        {"test": "olympiadbench/olympiad_bench.json"}, "olympiadbench", "test"
    ),
    "math500": DatasetSpec({"test": "math500/math.json"}, "math", "test"),
    "math_train": DatasetSpec({"train": "math_train/math.json"}, "math", "train"),
    "gsm8k_train": DatasetSpec({"train": "gsm8k_train/train.parquet"}, "gsm8k_verl", "train"),
    "apps": DatasetSpec(
        {
            "test": "apps_train_subset/test.parquet",
            "train": "apps_train_subset/train_intro.parquet",
        },
        "apps_verl",
        "test",
    ),
    "codecontests": DatasetSpec(
        {"test": "codecontests_test/code_contests.json"}, "codecontests", "test"
    ),
    "leetcode": DatasetSpec(
        {
            "test": "leetcodedataset_extra/test_leetcode.json",
            "train": "leetcodedataset_extra/train_leetcode.json",
        },
        "leetcode",
        "test",
    ),
    # code_generation_lite ships a loading script, which `datasets` >= 4 no longer runs: its
    # test*.jsonl files (all of them: release_v6) are read directly instead.
    "livecodebench": DatasetSpec(
        {"test": "livecodebench/test*.jsonl"},
        "livecodebench",
        "test",
        how="hf download livecodebench/code_generation_lite --repo-type dataset "
        "--include 'test*.jsonl' --local-dir <data folder>/livecodebench",
    ),
    "humaneval": DatasetSpec(
        {"test": "humaneval/HumanEval.jsonl.gz"},
        "humaneval",
        "test",
        hub="openai/openai_humaneval",
        how="copy data/HumanEval.jsonl.gz from github.com/openai/human-eval",
    ),
}


def data_dir() -> Path | None:
    """The shared data folder: $METAAGENTX_DATA_DIR, else `shared/data` beside the checkout."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    repo_root = Path(__file__).resolve().parents[3]
    for base in (Path.cwd(), repo_root):
        for candidate in (base / "shared" / "data", base.parent / "shared" / "data"):
            if candidate.is_dir():
                return candidate
    return None


def spec_split(name: str, split: str | None) -> str:
    """`split`, or the registered default; an unknown split names the ones there are."""
    spec = REGISTRY[name]
    split = split or spec.default_split
    if split not in spec.files:
        raise DatasetError(f"{name} has no split {split!r}; splits: {sorted(spec.files)}")
    return split


def registered_files(name: str, split: str) -> list[Path]:
    """The files of a registered split, in order; empty when absent and the spec has a hub
    fallback. Otherwise absent files raise at once, with the path they belong at."""
    spec = REGISTRY[name]
    pattern = spec.files[split]
    root = data_dir()
    if root is not None:
        found = sorted(root.glob(pattern)) if "*" in pattern else [root / pattern]
        found = [path for path in found if path.is_file()]
        if found:
            return found
    if spec.hub:
        return []
    if root is None:
        where = (
            f"no data folder: set {DATA_DIR_ENV} to the folder that holds {pattern} "
            "(or make a shared/data folder beside the checkout)"
        )
    else:
        where = f"no file at {root / pattern}"
        if not os.environ.get(DATA_DIR_ENV):
            where += f" (or set {DATA_DIR_ENV} to a data folder that has {pattern})"
    raise MissingDataError(f"{name}: {where}; to get it: {spec.how}")


def expected_path(name: str, split: str) -> str:
    """Where a registered split's file belongs, for messages."""
    root = data_dir()
    pattern = REGISTRY[name].files[split]
    return str(root / pattern) if root is not None else f"${DATA_DIR_ENV}/{pattern}"


def did_you_mean(word: str, choices: list[str]) -> str:
    """The hint ` (did you mean 'x'?)` for the closest choice, or "" when none is close."""
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    if not close:
        return ""
    # difflib scores a swap ("aime2042") as well as a changed digit: the same letters win the tie
    letters = sorted(word)
    best = max(close, key=lambda c: difflib.SequenceMatcher(None, letters, sorted(c)).ratio())
    return f" (did you mean '{best}'?)"


def unknown_name(name: str) -> DatasetError:
    """The error for a string that is neither a registered name, a file, nor a hub id."""
    known = [*sorted(REGISTRY), "synthetic"]
    return MissingDataError(
        f"unknown dataset '{name}'{did_you_mean(name, known)}: not a registered name "
        f"({', '.join(known)}), a local file, or a Hugging Face id owner/name[:config[:split]]"
    )
