"""The rank launchers: torchrun's environment, and real Ray Train workers on a local Ray."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from metaagentx.distributed import RayRunError, run_on_ray
from metaagentx.distributed.launch import _check_resources
from metaagentx.train.distributed import WorldInfo, world_from_env

# Ray Data, imported by Ray Train, warns about its own deprecated settings
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")

# --- world_from_env -------------------------------------------------------------------------


def test_world_defaults_to_one_process_alone() -> None:
    assert world_from_env({}) == (0, 1, 0)
    assert world_from_env({"WORLD_SIZE": "1"}) == WorldInfo(rank=0, world_size=1, local_rank=0)


def test_world_reads_torchrun_variables() -> None:
    world = world_from_env({"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1"})
    assert world == (5, 8, 1)
    assert (world.rank, world.world_size, world.local_rank) == (5, 8, 1)


def test_world_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert world_from_env() == (1, 2, 1)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"RANK": "one", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}, "RANK='one' is not an integer"),
        ({"RANK": "0", "WORLD_SIZE": "", "LOCAL_RANK": "0"}, "WORLD_SIZE='' is not an integer"),
        ({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "1.5"}, "LOCAL_RANK='1.5'"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE=0 must be at least 1"),
        ({"RANK": "2", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}, "RANK=2 is outside 0..1"),
        ({"RANK": "-1", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}, "RANK=-1 is outside"),
        ({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "2"}, "LOCAL_RANK=2 is outside"),
        ({"RANK": "3"}, "RANK=3 is outside 0..0"),
        ({"WORLD_SIZE": "4"}, "RANK and LOCAL_RANK not set"),
        ({"WORLD_SIZE": "4", "RANK": "1"}, "LOCAL_RANK not set"),
    ],
)
def test_world_rejects_malformed_environment(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        world_from_env(environ)


def test_missing_ray_is_a_one_line_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(ImportError, match=r'pip install "metaagentx\[ray\]"') as info:
        run_on_ray(_all_reduce_ranks, None, num_workers=2)
    assert "\n" not in str(info.value)


def test_bad_arguments_fail_before_ray_starts() -> None:
    with pytest.raises(ValueError, match="num_workers"):
        run_on_ray(_all_reduce_ranks, None, num_workers=0)
    with pytest.raises(ValueError, match="cpus_per_worker"):
        run_on_ray(_all_reduce_ranks, None, num_workers=1, cpus_per_worker=0)


def test_short_resources_fail_a_local_ray_and_warn_on_a_cluster(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ray = SimpleNamespace(cluster_resources=lambda: {"CPU": 2.0})
    _check_resources(ray, {"CPU": 2}, local=True)  # enough: nothing happens
    with pytest.raises(RuntimeError, match="GPU: has 0, the workers need 2"):
        _check_resources(ray, {"CPU": 2, "GPU": 2}, local=True)
    with caplog.at_level(logging.WARNING, logger="metaagentx.distributed.launch"):
        _check_resources(ray, {"CPU": 4}, local=False)  # a cluster may still be autoscaling
    assert "CPU: has 2, the workers need 4" in caplog.text


# --- run_on_ray on real Ray Train workers ---------------------------------------------------
# Module-level so that Ray can pickle them by reference into the workers.


def _all_reduce_ranks(expected_flag: str | None) -> tuple[int, int]:
    """Every rank contributes rank + 1; with 2 ranks each sees 3."""
    import torch
    import torch.distributed as dist

    assert dist.is_initialized() and dist.get_world_size() == 2
    assert os.environ.get("METAAGENTX_TEST_FLAG") == expected_flag
    total = torch.tensor([dist.get_rank() + 1])
    dist.all_reduce(total)
    return int(total.item()), dist.get_rank()


def _boom(_: object) -> None:
    raise ValueError("boom")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray for the module (starting it takes ~10 s); run_on_ray reuses it."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.train.torch")
    # the workers cannot import this test module (pytest put tests/ on sys.path only here)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield
    finally:
        ray.shutdown()
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_run_on_ray_returns_rank0_value(local_ray: None, tmp_path: Path) -> None:
    result = run_on_ray(
        _all_reduce_ranks,
        "on",
        num_workers=2,
        storage_path=tmp_path,
        env={"METAAGENTX_TEST_FLAG": "on"},
    )
    assert result == (3, 0)
    runs = [p.name for p in tmp_path.iterdir()]
    assert len(runs) == 1 and runs[0].startswith("metaagentx-")  # Ray Train's run dir is ours


def test_run_on_ray_raises_the_workers_error(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the default storage goes
    with pytest.raises(RayRunError, match="boom") as info:
        run_on_ray(_boom, None, num_workers=2)
    assert "ValueError: boom" in str(info.value)
    assert all(isinstance(e, ValueError) for e in info.value.failures.values())
    assert info.value.__cause__ is not None  # Ray's own error, with the worker's traceback
    assert list(scratch.iterdir()) == []  # the temporary storage was removed
