"""Hugging Face Hub sources, `owner/name[:config[:split]]`, loaded with `datasets`.

`openai/gsm8k:main` is the "main" config of openai/gsm8k; `openai/gsm8k:main:test` names the
split too (otherwise `data.train_split` / `data.val_split` apply, else "train"). Only a string of
this shape is a Hub id: the loader treats anything else as a registered name or a local path, so
a typo never goes to the network.

Offline (HF_HUB_OFFLINE=1, or no connection to the Hub within a few seconds) a dataset is read
from the local Hugging Face cache only, so a missing one fails at once instead of after
`huggingface_hub`'s ~25 s of retries (`metaagentx.hub_probe`). Download progress bars are shown
even where something turned them off (unless HF_HUB_DISABLE_PROGRESS_BARS is set).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metaagentx.errors import one_line
from metaagentx.hub_probe import hub_unreachable
from metaagentx.tasks.errors import DatasetError, MissingDataError
from metaagentx.tasks.files import SUFFIXES

_HUB_ID = re.compile(
    r"^(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?::(?P<config>[\w.-]+))?(?::(?P<split>.+))?$"
)


class HubUnavailable(MissingDataError):
    """The Hub cannot be reached and the dataset is not in the local cache; `why` says why."""

    def __init__(self, repo: str, why: str) -> None:
        super().__init__(
            f"{repo}: not in the local Hugging Face cache and the Hub is unreachable ({why}); "
            "run once with network, or download its data files and give their path"
        )
        self.why = why


@dataclass(frozen=True)
class HubId:
    """A Hub dataset: repo id, optional config name, optional split."""

    repo: str
    config: str | None = None
    split: str | None = None

    @classmethod
    def parse(cls, text: str) -> HubId | None:
        """The Hub id `text` spells, or None when it is not of the form owner/name[:config[:split]]
        (a data-file suffix such as `.jsonl` makes it a path, not an id)."""
        match = _HUB_ID.match(text)
        if match is None or Path(match["repo"]).suffix.lower() in (*SUFFIXES, ".gz"):
            return None
        return cls(match["repo"], match["config"], match["split"])

    def __str__(self) -> str:
        return ":".join(p for p in (self.repo, self.config, self.split) if p)


def offline_reason() -> str | None:
    """Why the Hub cannot be used now (HF_HUB_OFFLINE for either library, no connection)."""
    import datasets

    return hub_unreachable(offline=datasets.config.HF_HUB_OFFLINE)


@contextmanager
def _hub_mode(offline: bool) -> Iterator[None]:
    """Offline: `datasets` reads its cache only (no retries). Always: progress bars shown."""
    import datasets
    from huggingface_hub import constants, utils

    saved = constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
    bars_were_off = utils.are_progress_bars_disabled()
    if offline:
        constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    if bars_were_off and not constants.HF_HUB_DISABLE_PROGRESS_BARS:
        utils.enable_progress_bars()
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved
        if bars_were_off and not utils.are_progress_bars_disabled():
            utils.disable_progress_bars()


def hub_rows(hub: HubId, split: str | None = None) -> list[dict[str, Any]]:
    """The rows of a Hub dataset split: the id's own split, else `split`, else "train"."""
    import datasets

    split = hub.split or split or "train"
    offline = offline_reason()
    try:
        with _hub_mode(offline is not None):
            dataset = datasets.load_dataset(hub.repo, hub.config, split=split)
    except ConnectionError as exc:
        raise HubUnavailable(hub.repo, offline or one_line(exc)) from None
    except (FileNotFoundError, ValueError) as exc:  # no such dataset, config or split
        raise DatasetError(f"{hub} (split {split}): {one_line(exc)}") from None
    except RuntimeError as exc:
        if "script" not in str(exc):
            raise
        raise DatasetError(
            f"{hub}: {one_line(exc)}; download its data files (hf download "
            f"{hub.repo} --repo-type dataset) and give their path"
        ) from None
    return [dict(row) for row in dataset]
