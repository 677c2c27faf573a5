"""Reading a local data file into rows that remember where they came from.

JSON Lines is read line by line: a line that is not JSON becomes a record carrying its error and
its 1-based physical line number, so the loader can skip and name it instead of refusing the
whole file. A file that cannot be read at all (not JSON, not parquet, not UTF-8, a broken gzip)
is one `DatasetError` naming the file. Formats: .json (an array, an object holding one, or JSON
Lines under that name), .jsonl/.ndjson, .parquet, .csv; .json and .jsonl may be gzipped.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from metaagentx.tasks.errors import DatasetError

SUFFIXES = (".json", ".jsonl", ".ndjson", ".parquet", ".csv")


@dataclass(frozen=True)
class Record:
    """One row of a file; `line` is known for JSON Lines, `error` set when the line is no JSON."""

    row: Any
    file: str
    line: int | None = None
    error: json.JSONDecodeError | None = None

    @property
    def reason(self) -> str:
        assert self.error is not None
        return f"not valid JSON ({self.error.msg} at column {self.error.colno})"


def data_suffix(path: Path) -> str:
    """The format suffix, looking through a `.gz` (HumanEval ships as `.jsonl.gz`)."""
    suffixes = [x.lower() for x in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _open_text(path: Path) -> IO[str]:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _plain(value: Any) -> Any:
    """numpy arrays/scalars from parquet -> plain Python lists/scalars."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _plain(value.tolist())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _json_lines(path: Path) -> Iterator[Record]:
    good, first_bad = 0, None
    with _open_text(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                bad = Record(None, str(path), number, exc)
                first_bad = first_bad or bad
                yield bad
                continue
            good += 1
            yield Record(row, str(path), number)
    if first_bad is not None and not good:
        raise DatasetError(
            f"{path}: no line is JSON (line {first_bad.line}: {first_bad.reason}); "
            "one JSON array or object belongs in a .json file"
        )


def _json(path: Path) -> Iterator[Record]:
    with _open_text(path) as fh:
        text = fh.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and text.lstrip().startswith("{"):  # JSON Lines as .json
            yield from _json_lines(path)
            return
        raise DatasetError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), [data])
    if not isinstance(data, list):
        raise DatasetError(f"{path}: holds a JSON {type(data).__name__}, not rows")
    for row in data:
        yield Record(row, str(path))


def _table(path: Path, suffix: str) -> Iterator[Record]:
    import pandas as pd

    try:
        frame = (
            pd.read_parquet(path)
            if suffix == ".parquet"
            else pd.read_csv(path, dtype=str, keep_default_na=False)
        )
    except (ValueError, OSError, ImportError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        kind = suffix.lstrip(".")
        raise DatasetError(f"{path}: not a readable {kind} file ({exc})") from None
    for record in frame.to_dict(orient="records"):
        yield Record(_plain(record), str(path))


def read_records(path: Path) -> Iterator[Record]:
    """The records of one file (see the module doc); unreadable files raise `DatasetError`."""
    suffix = data_suffix(path)
    try:
        if suffix in (".parquet", ".csv"):
            yield from _table(path, suffix)
        elif suffix in (".jsonl", ".ndjson"):
            yield from _json_lines(path)
        else:
            yield from _json(path)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read it ({exc})") from None


def read_rows(path: Path) -> Iterator[Any]:
    """The rows of one file, raising the `json.JSONDecodeError` of the first line that is not
    JSON (for callers that want all or nothing, such as `run --tests`)."""
    for record in read_records(path):
        if record.error is not None:
            raise record.error
        yield record.row
