"""Loading tasks by registered name, local file or Hugging Face dataset name.

A registered name ("aime2024", "apps", ...) resolves inside the shared data folder
(`METAAGENTX_DATA_DIR`, else a `shared/data` folder beside the checkout); "synthetic" builds the
built-in suite; any other string is a local file (json, jsonl, parquet) or, failing that, a
Hugging Face dataset. Malformed rows are skipped, counted and logged with their ids (or raise in
strict mode) so one bad row never stops a training run.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from metaagentx.tasks.adapters import ADAPTERS, MalformedRow, detect_format
from metaagentx.tasks.base import Task

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    """Where a registered benchmark lives: a file per split under the data folder, or on HF."""

    files: dict[str, str]
    format: str
    default_split: str
    hf_name: str | None = None
    hf_config: str | None = None


REGISTRY: dict[str, DatasetSpec] = {
    "aime2024": DatasetSpec({"test": "aime2024/aime.json"}, "aime", "test"),
    "aime2025": DatasetSpec({"test": "aime2025/test.jsonl"}, "aime", "test"),
    "aime_train": DatasetSpec({"train": "aime_1983_2023_train/aime.json"}, "aime", "train"),
    "olympiadbench": DatasetSpec({"test": "olympiadbench/olympiad_bench.json"},
                                 "olympiadbench", "test"),
    "math500": DatasetSpec({"test": "math500/math.json"}, "math", "test"),
    "math_train": DatasetSpec({"train": "math_train/math.json"}, "math", "train"),
    "gsm8k_train": DatasetSpec({"train": "gsm8k_train/train.parquet"}, "gsm8k_verl", "train"),
    "apps": DatasetSpec({"test": "apps_train_subset/test.parquet",
                         "train": "apps_train_subset/train_intro.parquet"}, "apps_verl", "test"),
    "codecontests": DatasetSpec({"test": "codecontests_test/code_contests.json"},
                                "codecontests", "test"),
    "leetcode": DatasetSpec({"test": "leetcodedataset_extra/test_leetcode.json",
                             "train": "leetcodedataset_extra/train_leetcode.json"},
                            "leetcode", "test"),
    "livecodebench": DatasetSpec({}, "livecodebench", "test",
                                 hf_name="livecodebench/code_generation_lite",
                                 hf_config="release_v6"),
    "humaneval": DatasetSpec({}, "humaneval", "test", hf_name="openai/openai_humaneval"),
}


def data_dir() -> Path | None:
    """The shared data folder: $METAAGENTX_DATA_DIR, else `shared/data` beside the checkout."""
    env = os.environ.get("METAAGENTX_DATA_DIR")
    if env:
        return Path(env).expanduser()
    repo_root = Path(__file__).resolve().parents[3]
    for base in (Path.cwd(), repo_root):
        for candidate in (base / "shared" / "data", base.parent / "shared" / "data"):
            if candidate.is_dir():
                return candidate
    return None


@dataclass
class LoadResult:
    """Tasks loaded from one source, and the rows skipped with the reason for each."""

    source: str
    format: str
    rows: int = 0
    tasks: list[Task] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def _plain(value: Any) -> Any:
    """numpy arrays/scalars from parquet -> plain Python lists/scalars."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _plain(value.tolist())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _data_suffix(path: Path) -> str:
    """The format suffix, looking through a `.gz` (HumanEval ships as `.jsonl.gz`)."""
    suffixes = [x.lower() for x in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _open_text(path: Path) -> IO[str]:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a .json array, .jsonl or .parquet file (.json and .jsonl may be gzipped)."""
    suffix = _data_suffix(path)
    if suffix == ".parquet":
        import pandas as pd

        for record in pd.read_parquet(path).to_dict(orient="records"):
            yield _plain(record)
    elif suffix in (".jsonl", ".ndjson"):
        with _open_text(path) as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)
    else:
        with _open_text(path) as fh:
            data = json.load(fh)
        if isinstance(data, dict):
            data = next((v for v in data.values() if isinstance(v, list)), [data])
        yield from data


def _row_id(row: Any, index: int) -> str:
    if isinstance(row, dict):
        extra = row.get("extra_info") if isinstance(row.get("extra_info"), dict) else {}
        for key in ("id", "task_id", "question_id", "unique_id", "problem_id"):
            if row.get(key) not in (None, ""):
                return str(row[key])
        if extra.get("id") is not None:
            return str(extra["id"])
    return f"#{index}"


def adapt_rows(rows: Iterator[dict[str, Any]] | list[dict[str, Any]], source: str,
               fmt: str | None = None, strict: bool = False,
               limit: int | None = None) -> LoadResult:
    """Turn raw rows into tasks with the named (or detected) adapter."""
    result = LoadResult(source=source, format=fmt or "")
    for index, row in enumerate(rows):
        if limit is not None and len(result.tasks) >= limit:
            break
        result.rows += 1
        try:
            if not isinstance(row, dict):
                raise MalformedRow(f"row is a {type(row).__name__}, not an object")
            if not result.format:
                result.format = detect_format(row)
            task = ADAPTERS[result.format](row, index, source)
        except (MalformedRow, KeyError, TypeError, ValueError, SyntaxError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if strict:
                raise ValueError(f"{source}: row {index} (id {_row_id(row, index)}): "
                                 f"{reason}") from exc
            result.skipped.append({"row": index, "id": _row_id(row, index), "reason": reason})
            continue
        result.tasks.append(task)
    if result.skipped:
        logger.warning("%s: skipped %d malformed row(s): %s", source, len(result.skipped),
                       ", ".join(f"{s['id']} ({s['reason']})" for s in result.skipped[:20]))
    return result


def _resolve_registered(name: str, split: str | None) -> tuple[Path | None, DatasetSpec, str]:
    spec = REGISTRY[name]
    split = split or spec.default_split
    if not spec.files:
        return None, spec, split
    if split not in spec.files:
        raise ValueError(f"{name} has no split {split!r}; splits: {sorted(spec.files)}")
    root = data_dir()
    if root is None:
        raise FileNotFoundError(
            f"{name}: no data folder found; set METAAGENTX_DATA_DIR to the shared data folder")
    path = root / spec.files[split]
    if not path.is_file():
        raise FileNotFoundError(f"{name}: {path} does not exist")
    return path, spec, split


def _hf_rows(name: str, config: str | None, split: str) -> list[dict[str, Any]]:
    import datasets

    dataset = datasets.load_dataset(name, config, split=split) if config else \
        datasets.load_dataset(name, split=split)
    return [dict(row) for row in dataset]


def load_tasks_report(name_or_path: str, split: str | None = None, *, strict: bool = False,
                      limit: int | None = None, format: str | None = None,
                      seed: int = 0) -> LoadResult:
    """Load tasks and report the malformed rows; see `load_tasks`."""
    if name_or_path == "synthetic" or name_or_path.startswith("synthetic:"):
        from metaagentx.tasks.synthetic import load_synthetic

        return load_synthetic(name_or_path, split or "train", limit=limit, seed=seed)
    if name_or_path in REGISTRY:
        path, spec, split = _resolve_registered(name_or_path, split)
        fmt = format or spec.format
        if path is None:
            rows = _hf_rows(str(spec.hf_name), spec.hf_config, split)
            return adapt_rows(rows, name_or_path, fmt, strict, limit)
        return adapt_rows(read_rows(path), f"{name_or_path}", fmt, strict, limit)
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return adapt_rows(read_rows(path), path.name.split(".")[0], format, strict, limit)
    if path.suffix or path.exists():
        raise FileNotFoundError(f"{name_or_path}: no such file or registered dataset "
                                f"(registered: {', '.join(sorted(REGISTRY))}, synthetic)")
    rows = _hf_rows(name_or_path, None, split or "train")
    return adapt_rows(rows, name_or_path.replace("/", "_"), format, strict, limit)


def load_tasks(name_or_path: str, split: str | None = None, *, strict: bool = False,
               limit: int | None = None, format: str | None = None, seed: int = 0) -> list[Task]:
    """Tasks from a registered name, a local json/jsonl/parquet file, or a HF dataset name.

    `split` picks the file of a registered name (its default otherwise); `format` forces an
    adapter (detected from the first row otherwise); `seed` applies to the synthetic suite.
    """
    return load_tasks_report(name_or_path, split, strict=strict, limit=limit, format=format,
                             seed=seed).tasks


def show_tasks(name_or_path: str, limit: int = 5, split: str | None = None) -> list[dict[str, Any]]:
    """The first `limit` tasks as plain dicts (what `metaagentx data show` prints)."""
    return [task.to_dict() for task in load_tasks(name_or_path, split, limit=limit)]


def check_tasks(name_or_path: str, split: str | None = None) -> dict[str, Any]:
    """Row counts, skipped rows with reasons and a summary (what `metaagentx data check` prints)."""
    report = load_tasks_report(name_or_path, split)
    kinds: Counter[str] = Counter()
    for task in report.tasks:
        kinds.update(t.kind for t in task.public_tests + task.hidden_tests)
    return {
        "source": report.source,
        "format": report.format,
        "rows": report.rows,
        "tasks": len(report.tasks),
        "skipped": len(report.skipped),
        "malformed": report.skipped,
        "domains": dict(Counter(t.domain for t in report.tasks)),
        "test_kinds": dict(kinds),
        "with_public_tests": sum(1 for t in report.tasks if t.public_tests),
    }
