"""Loading tasks from a registered name, a local file, a Hugging Face dataset or the synthetic
suite.

A source string is, in this order:
- `synthetic`, `synthetic:FAMILY` or `synthetic:FAMILY:LEVEL`: the built-in suite;
- a registered name ("aime2024", "apps", ...; `REGISTRY`): its file under the shared data folder
  (`METAAGENTX_DATA_DIR`); missing files fail at once with where they belong;
- an existing local file (.json, .jsonl, .parquet, .csv; .json/.jsonl may be gzipped);
- a Hugging Face id `owner/name[:config[:split]]`, e.g. `openai/gsm8k:main` (config "main") or
  `openai/gsm8k:main:test`; without a split in the id the caller's split applies (else "train").
Anything else fails at once: a path-like string is "no such file", a bare word an unknown name
(with "did you mean ...?"). Nothing but a Hub id ever reaches the network.

Rows that cannot become tasks (a line that is not JSON, a row no adapter can read) are skipped,
counted and named by file and line (JSON Lines) or row and id, so one bad row never stops a
training run; `strict=True` raises on the first one instead. For files and Hub datasets,
`fields` renames the dataset's columns to ours ({"prompt": "query"}) and `format` forces an
adapter; registered names keep their own schema.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from metaagentx.tasks.adapters import ADAPTERS, MalformedRow, detect_format
from metaagentx.tasks.base import Task
from metaagentx.tasks.errors import DatasetError, MissingDataError
from metaagentx.tasks.files import SUFFIXES, Record, data_suffix, read_records, read_rows
from metaagentx.tasks.hub import HubId, HubUnavailable, hub_rows
from metaagentx.tasks.registry import (
    REGISTRY,
    DatasetSpec,
    data_dir,
    did_you_mean,
    expected_path,
    registered_files,
    spec_split,
    unknown_name,
)

logger = logging.getLogger(__name__)

__all__ = [
    "REGISTRY",
    "DatasetSpec",
    "LoadResult",
    "adapt_rows",
    "check_tasks",
    "data_dir",
    "load_tasks",
    "load_tasks_report",
    "read_rows",
    "show_tasks",
]


@dataclass
class LoadResult:
    """Tasks loaded from one source, and the rows skipped: each with `row` (0-based), `id`,
    `reason`, and `file` and `line` (1-based) where known."""

    source: str
    format: str
    rows: int = 0
    tasks: list[Task] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def _row_id(row: Any, index: int) -> str:
    if isinstance(row, dict):
        extra = row.get("extra_info") if isinstance(row.get("extra_info"), dict) else {}
        for key in ("id", "task_id", "question_id", "unique_id", "problem_id"):
            if row.get(key) not in (None, ""):
                return str(row[key])
        if extra.get("id") is not None:
            return str(extra["id"])
    return f"#{index}"


def rename_fields(row: Any, fields: dict[str, str] | None) -> Any:
    """`row` with the dataset's columns renamed to ours: fields maps our name to theirs."""
    if not fields or not isinstance(row, dict):
        return row
    renamed = {k: v for k, v in row.items() if k not in fields.values()}
    renamed.update({ours: row[theirs] for ours, theirs in fields.items() if theirs in row})
    return renamed


def _task(
    record: Record, index: int, source: str, result: LoadResult, fields: dict[str, str] | None
) -> Task:
    if record.error is not None:
        raise MalformedRow(record.reason)
    row = rename_fields(record.row, fields)
    if not isinstance(row, dict):
        raise MalformedRow(f"row is a {type(row).__name__}, not an object")
    try:
        if not result.format:
            result.format = detect_format(row)
        return ADAPTERS[result.format](row, index, source)
    except (MalformedRow, KeyError, TypeError, ValueError, SyntaxError) as exc:
        missing = [theirs for theirs in (fields or {}).values() if theirs not in record.row]
        if missing:
            raise MalformedRow(f"{exc} (data.fields columns not in the row: {missing})") from exc
        raise


def _adapt(
    records: Iterable[Record],
    source: str,
    fmt: str | None,
    strict: bool,
    limit: int | None,
    fields: dict[str, str] | None,
) -> LoadResult:
    result = LoadResult(source=source, format=fmt or "")
    for index, record in enumerate(records):
        if limit is not None and len(result.tasks) >= limit:
            break
        result.rows += 1
        try:
            result.tasks.append(_task(record, index, source, result, fields))
        except (MalformedRow, KeyError, TypeError, ValueError, SyntaxError) as exc:
            skip = {
                "row": index,
                "id": _row_id(record.row, index),
                "reason": f"{type(exc).__name__}: {exc}",
                "file": record.file or None,
                "line": record.line,
            }
            if strict:
                raise DatasetError(
                    f"{_where(skip)}: {skip['reason']} (data.strict=false skips such rows)"
                ) from exc
            result.skipped.append(skip)
    if result.skipped:
        logger.warning(
            "%s: skipped %d malformed row(s): %s",
            source,
            len(result.skipped),
            "; ".join(f"{_where(s)}: {s['reason']}" for s in result.skipped[:20]),
        )
    return result


def _where(skip: dict[str, Any]) -> str:
    """Where a skipped row is: `file:line (id X)` for JSON Lines, else `file row N (id X)`."""
    place = (
        f"{skip['file']}:{skip['line']}"
        if skip["line"] is not None
        else f"{skip['file'] or ''} row {skip['row']}".lstrip()
    )
    return place if skip["id"].startswith("#") else f"{place} (id {skip['id']})"


def adapt_rows(
    rows: Iterable[Any],
    source: str,
    fmt: str | None = None,
    strict: bool = False,
    limit: int | None = None,
    fields: dict[str, str] | None = None,
) -> LoadResult:
    """Turn raw rows into tasks with the named (or detected) adapter."""
    return _adapt((Record(row, "") for row in rows), source, fmt, strict, limit, fields)


def _file_records(paths: list[Path]) -> Iterator[Record]:
    return chain.from_iterable(read_records(path) for path in paths)


def _check_format(fmt: str | None) -> None:
    if fmt is not None and fmt not in ADAPTERS:
        raise DatasetError(
            f"unknown format '{fmt}'{did_you_mean(fmt, list(ADAPTERS))}; "
            f"formats: {', '.join(sorted(ADAPTERS))}"
        )


def _registered(name: str, split: str | None, strict: bool, limit: int | None) -> LoadResult:
    spec = REGISTRY[name]
    split = spec_split(name, split)
    paths = registered_files(name, split)
    if paths:
        return _adapt(_file_records(paths), name, spec.format, strict, limit, None)
    hub = HubId.parse(str(spec.hub))
    assert hub is not None, f"{name}: bad registered hub id {spec.hub!r}"
    try:
        rows = hub_rows(hub, split)
    except HubUnavailable as exc:
        raise MissingDataError(
            f"{name}: no file at {expected_path(name, split)} (to get it: {spec.how}), "
            "and its Hub copy "
            f"{hub.repo} is not in the local Hugging Face cache with the Hub unreachable "
            f"({exc.why})"
        ) from None
    return _adapt((Record(row, "") for row in rows), name, spec.format, strict, limit, None)


def _hub_records(hub: HubId, split: str | None, path: Path) -> Iterator[Record]:
    try:
        rows = hub_rows(hub, split)
    except HubUnavailable as exc:
        if path.parent.is_dir():  # `data/train` beside a `data` folder: likely a missing file
            raise MissingDataError(f"{path}: no such file; as a Hugging Face id: {exc}") from None
        raise
    return (Record(row, "") for row in rows)


def _looks_like_path(text: str) -> bool:
    path = Path(text).expanduser()
    return text.startswith(("/", ".", "~")) or path.exists() or data_suffix(path) in SUFFIXES


def _no_such_file(text: str) -> MissingDataError:
    path = Path(text).expanduser()
    if path.is_dir():
        return MissingDataError(
            f"{text}: is a folder; give a data file in it ({', '.join(SUFFIXES)})"
        )
    parent = path.parent if path.parent.is_dir() else None
    near = did_you_mean(path.name, [p.name for p in parent.iterdir()]) if parent else ""
    folder = "" if parent else f" (no folder {path.parent})"
    return MissingDataError(f"{text}: no such file{near}{folder}")


def load_tasks_report(
    name_or_path: str,
    split: str | None = None,
    *,
    strict: bool = False,
    limit: int | None = None,
    format: str | None = None,
    fields: dict[str, str] | None = None,
    seed: int = 0,
) -> LoadResult:
    """Load tasks and report the malformed rows; see the module doc and `load_tasks`."""
    _check_format(format)
    if name_or_path == "synthetic" or name_or_path.startswith("synthetic:"):
        from metaagentx.tasks.synthetic import load_synthetic

        return load_synthetic(name_or_path, split or "train", limit=limit, seed=seed)
    if name_or_path in REGISTRY:
        return _registered(name_or_path, split, strict, limit)
    path = Path(name_or_path).expanduser()
    if path.is_file():
        source = path.name.split(".")[0]
        return _adapt(read_records(path), source, format, strict, limit, fields)
    hub = None if _looks_like_path(name_or_path) else HubId.parse(name_or_path)
    if hub is not None:
        return _adapt(
            _hub_records(hub, split, path),
            hub.repo.replace("/", "_"),
            format,
            strict,
            limit,
            fields,
        )
    if _looks_like_path(name_or_path) or "/" in name_or_path:
        raise _no_such_file(name_or_path)
    raise unknown_name(name_or_path)


def load_tasks(
    name_or_path: str,
    split: str | None = None,
    *,
    strict: bool = False,
    limit: int | None = None,
    format: str | None = None,
    fields: dict[str, str] | None = None,
    seed: int = 0,
) -> list[Task]:
    """Tasks from a source (see the module doc); a source that yields none raises.

    `split` picks the file of a registered name (its default otherwise) or the Hub split;
    `format` forces an adapter and `fields` renames columns (files and Hub datasets only);
    `strict` raises on the first malformed row; `seed` applies to the synthetic suite.
    """
    report = load_tasks_report(
        name_or_path, split, strict=strict, limit=limit, format=format, fields=fields, seed=seed
    )
    if not report.tasks and report.rows:
        first = report.skipped[0]
        raise DatasetError(
            f"{name_or_path}: none of its {report.rows} rows is a task (first: "
            f"{_where(first)}: {first['reason']}); check the rows with "
            f"`metaagentx data check {name_or_path}`"
        )
    return report.tasks


def show_tasks(
    name_or_path: str,
    limit: int = 5,
    split: str | None = None,
    *,
    format: str | None = None,
    fields: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The first `limit` tasks as plain dicts (what `metaagentx data show` prints)."""
    tasks = load_tasks(name_or_path, split, limit=limit, format=format, fields=fields)
    return [task.to_dict() for task in tasks]


def check_tasks(
    name_or_path: str,
    split: str | None = None,
    *,
    format: str | None = None,
    fields: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Row counts, skipped rows with reasons and a summary (what `metaagentx data check` prints);
    `format` and `fields` as in `load_tasks`, to try a mapping before training with it."""
    report = load_tasks_report(name_or_path, split, format=format, fields=fields)
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
