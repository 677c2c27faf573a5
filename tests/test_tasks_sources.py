"""Where a source string points, and failing at once when it points nowhere: Hub ids with a
config and split, registered names whose files are missing, typos and missing paths. None of
the failures may touch the Hub: `datasets.load_dataset` and the connection probe raise if called.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import datasets
import pytest
from huggingface_hub import constants as hub_constants
from huggingface_hub import utils as hub_utils

from metaagentx.tasks import hub
from metaagentx.tasks.datasets import load_tasks, load_tasks_report
from metaagentx.tasks.errors import MissingDataError
from metaagentx.tasks.hub import HubId
from metaagentx.tasks.registry import REGISTRY

FIXTURES = Path(__file__).parent / "fixtures" / "tasks"
GSM8K_ROWS = [
    {"question": "What is 2+3?", "answer": "2+3=5\n#### 5"},
    {"question": "What is 3+4?", "answer": "3+4=7\n#### 7"},
]


def _never(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"the Hub was called: {args} {kwargs}")


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datasets, "load_dataset", _never)
    monkeypatch.setattr(socket, "create_connection", _never)


@pytest.fixture
def empty_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("METAAGENTX_DATA_DIR", str(tmp_path))
    return tmp_path


class FakeHub:
    """`datasets.load_dataset` returning rows; records each call and the offline flag then."""

    def __init__(self, rows: list[dict[str, Any]] | None = None) -> None:
        self.rows, self.calls, self.offline = rows, [], []

    def __call__(self, repo: str, config: str | None = None, *, split: str) -> Any:
        self.calls.append((repo, config, split))
        self.offline.append(datasets.config.HF_HUB_OFFLINE)
        if self.rows is None:
            raise ConnectionError(f"Couldn't reach '{repo}' on the Hub (OfflineModeIsEnabled)")
        return datasets.Dataset.from_list(self.rows)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("openai/gsm8k", HubId("openai/gsm8k")),
        ("openai/gsm8k:main", HubId("openai/gsm8k", "main")),
        ("openai/gsm8k:main:test", HubId("openai/gsm8k", "main", "test")),
        (
            "EleutherAI/hendrycks_math:algebra:train[:100]",
            HubId("EleutherAI/hendrycks_math", "algebra", "train[:100]"),
        ),
        ("data/train.jsonl", None),
        ("./openai/gsm8k", None),
        ("/abs/x", None),
        ("aime2024", None),
        ("a/b/c", None),
    ],
)
def test_hub_id_syntax(text: str, parsed: HubId | None) -> None:
    assert HubId.parse(text) == parsed
    if parsed is not None:
        assert str(parsed) == text


def test_hub_source_is_loaded_with_its_config_and_the_callers_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeHub(GSM8K_ROWS)
    monkeypatch.setattr(datasets, "load_dataset", fake)
    monkeypatch.setattr(hub, "offline_reason", lambda: None)
    tasks = load_tasks("openai/gsm8k:main", "test")
    load_tasks("openai/gsm8k:main:train", "test")  # the id's own split wins
    load_tasks("openai/gsm8k")
    assert fake.calls == [
        ("openai/gsm8k", "main", "test"),
        ("openai/gsm8k", "main", "train"),
        ("openai/gsm8k", None, "train"),
    ]
    assert [(t.id, t.answer) for t in tasks] == [("openai_gsm8k/0", "5"), ("openai_gsm8k/1", "7")]


def test_evaluation_reads_a_hub_dataset_from_the_held_out_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from metaagentx.config import build_config
    from metaagentx.eval.evaluate import benchmark_tasks

    fake = FakeHub(GSM8K_ROWS)
    monkeypatch.setattr(datasets, "load_dataset", fake)
    monkeypatch.setattr(hub, "offline_reason", lambda: None)
    config = build_config(overrides=["data.val_split=test"])
    assert len(benchmark_tasks("openai/gsm8k:main", config)) == 2
    benchmark_tasks("openai/gsm8k:main:validation", config)
    assert fake.calls == [("openai/gsm8k", "main", "test"), ("openai/gsm8k", "main", "validation")]


def test_hub_fields_mapping_applies_and_download_progress_is_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown = []

    def fake(repo: str, config: str | None = None, *, split: str) -> Any:
        shown.append(not hub_utils.are_progress_bars_disabled())
        return [{"query": "What is 1+1?", "final": "2"}]

    monkeypatch.setattr(datasets, "load_dataset", fake)
    monkeypatch.setattr(hub, "offline_reason", lambda: None)
    monkeypatch.setattr(hub_constants, "HF_HUB_DISABLE_PROGRESS_BARS", None)
    hub_utils.disable_progress_bars()  # what model loading does
    try:
        (task,) = load_tasks("me/own:v2", fields={"prompt": "query", "answer": "final"})
        assert hub_utils.are_progress_bars_disabled()  # restored afterwards
    finally:
        hub_utils.enable_progress_bars()
    assert shown == [True] and task.answer == "2"


def test_registered_hub_fallback_offline_fails_at_once_with_the_expected_path(
    empty_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeHub(None)  # offline and not cached: what `datasets` raises
    monkeypatch.setattr(datasets, "load_dataset", fake)
    monkeypatch.setattr(socket, "create_connection", _never)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(MissingDataError) as caught:
        load_tasks("humaneval")
    message = str(caught.value)
    assert str(empty_data_dir / "humaneval" / "HumanEval.jsonl.gz") in message
    assert "HF_HUB_OFFLINE is set" in message and "github.com/openai/human-eval" in message
    assert fake.calls == [("openai/openai_humaneval", None, "test")] and fake.offline == [True]


def test_an_unreachable_hub_reads_the_cache_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise OSError("Name or service not known")

    fake = FakeHub(GSM8K_ROWS)  # as if cached
    monkeypatch.setattr(datasets, "load_dataset", fake)
    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    assert len(load_tasks("openai/gsm8k:main")) == 2
    assert fake.offline == [True]  # no retry loop: offline mode while loading
    assert not hub_constants.HF_HUB_OFFLINE and not datasets.config.HF_HUB_OFFLINE


def test_a_registered_file_on_disk_is_used_before_the_hub(
    empty_data_dir: Path, no_hub: None
) -> None:
    target = empty_data_dir / "humaneval" / "HumanEval.jsonl.gz"
    target.parent.mkdir()
    target.write_bytes((FIXTURES / "HumanEval.jsonl.gz").read_bytes())
    assert len(load_tasks("humaneval")) == 164


def test_livecodebench_reads_every_downloaded_test_file(empty_data_dir: Path, no_hub: None) -> None:
    rows = (FIXTURES / "livecodebench.jsonl").read_text().splitlines()
    folder = empty_data_dir / "livecodebench"
    folder.mkdir()
    (folder / "test.jsonl").write_text(rows[0] + "\n")
    (folder / "test2.jsonl").write_text(rows[1] + "\n")
    tasks = load_tasks("livecodebench")
    assert [t.id.split("/")[-1] for t in tasks] == [json.loads(r)["question_id"] for r in rows]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("aime2024", "aime2024/aime.json"),
        ("apps", "apps_train_subset/test.parquet"),
        ("livecodebench", "hf download livecodebench/code_generation_lite"),
    ],
)
def test_a_registered_name_without_its_file_says_where_it_goes(
    empty_data_dir: Path, no_hub: None, name: str, expected: str
) -> None:
    with pytest.raises(MissingDataError, match=f"^{name}: no file at {empty_data_dir}") as caught:
        load_tasks(name)
    assert expected in str(caught.value)


def test_no_data_folder_says_how_to_set_one(monkeypatch: pytest.MonkeyPatch, no_hub: None) -> None:
    from metaagentx.tasks import registry

    monkeypatch.setattr(registry, "data_dir", lambda: None)
    with pytest.raises(MissingDataError, match=r"no data folder: set METAAGENTX_DATA_DIR .*aime"):
        load_tasks("aime2024")


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("aime2042", "did you mean 'aime2024'?"),
        ("math_500", "did you mean 'math500'?"),
        ("livecodebnch", "did you mean 'livecodebench'?"),
        ("synthetc", "did you mean 'synthetic'?"),
        ("gibberish", "not a registered name"),
        ("synthetic:arth", "did you mean 'arith'?"),
    ],
)
def test_a_misspelt_name_suggests_the_closest(no_hub: None, name: str, hint: str) -> None:
    with pytest.raises(MissingDataError if ":" not in name else ValueError, match=re.escape(hint)):
        load_tasks(name)


@pytest.mark.parametrize("path", ["/data/x.jsonl", "./nope.json", "no/such/dir/x", "nope.parquet"])
def test_a_missing_local_path_is_no_such_file(no_hub: None, path: str) -> None:
    with pytest.raises(FileNotFoundError, match=f"^{path}: no such file"):
        load_tasks(path)


def test_a_near_miss_file_name_is_suggested(tmp_path: Path, no_hub: None) -> None:
    (tmp_path / "train.jsonl").write_text(json.dumps({"problem": "p", "answer": "1"}) + "\n")
    with pytest.raises(MissingDataError, match=re.escape("did you mean 'train.jsonl'?")):
        load_tasks(str(tmp_path / "trian.jsonl"))
    with pytest.raises(MissingDataError, match="is a folder"):
        load_tasks(str(tmp_path))


def test_an_unknown_split_of_a_registered_name_lists_the_splits(no_hub: None) -> None:
    with pytest.raises(ValueError, match=r"aime2024 has no split 'train'; splits: \['test'\]"):
        load_tasks_report("aime2024", "train")


def test_every_registered_hub_fallback_is_a_valid_hub_id() -> None:
    hubs = [spec.hub for spec in REGISTRY.values() if spec.hub]
    assert hubs and all(HubId.parse(h) is not None for h in hubs)
