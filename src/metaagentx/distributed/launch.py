"""Start the training ranks on Ray Train workers (`run_on_ray`); torchrun starts its own.

Training code is one plain function every rank runs; it finds the torch process group already
initialised when it runs here under Ray, and otherwise runs alone. Ray is an optional
dependency (`pip install "metaagentx[ray]"`), so it is imported only when a launch asks for it.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from metaagentx.config import Config

T = TypeVar("T")

_INSTALL_HINT = 'pip install "metaagentx[ray]"'

# Driver-side filter for two harmless Ray lines that would otherwise repeat through a whole run:
# Ray Train's placement-group watchdog polls the State API, which needs ray[default]'s dashboard
# (without one it warns every few seconds for as long as the run lasts), and Ray core flags its own PreemptionWatcher actor
# (https://github.com/ray-project/ray/issues/53727). Errors and the workers' output still print.
_SKIP_LOG_LINES = (
    r"State API may be temporarily unavailable"
    r"|class name: 'PreemptionWatcher'.*constructor arguments in the object store"
)


# Ray Train V2 routes a worker's print() through its logger and, since Ray wraps stdout, each
# line reached the console twice; plain print() prints once (and still lands in Ray's logs).
_WORKER_ENV = {"RAY_TRAIN_ENABLE_PRINT_PATCH": "0"}

logger = logging.getLogger(__name__)


class RayRunError(RuntimeError):
    """A Ray Train run failed; `failures` maps each failed worker rank to its exception."""

    def __init__(self, message: str, failures: Mapping[int, BaseException] | None = None):
        super().__init__(message)
        self.failures: dict[int, BaseException] = dict(failures or {})


def run_on_ray(
    fn: Callable[[Any], T],
    arg: Any,
    *,
    num_workers: int,
    use_gpu: bool = False,
    backend: str = "auto",
    address: str | None = None,
    cpus_per_worker: float = 1,
    storage_path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> T:
    """Run `fn(arg)` on `num_workers` Ray Train workers and return rank 0's return value.

    Ray Train starts the workers and initialises the torch process group (`backend` "auto":
    nccl with GPUs, else gloo) before `fn` runs. Ray already initialised in this process is
    reused as is; else `address` (or RAY_ADDRESS) names a cluster to connect to, which is left
    running; else a local Ray sized for the workers is started and shut down afterwards.
    Ray Train's run directory goes under `storage_path` (for several nodes: a path every node
    shares), by default a temporary directory removed afterwards. `env` is set on the workers.
    Ray pickles `fn` by reference to its module (unless it is defined in `__main__`): that
    module must be importable on every worker, e.g. part of an installed package.
    A failed worker raises RayRunError carrying the worker's message, chained to Ray's error.
    """
    if num_workers < 1:
        raise ValueError(f"num_workers must be at least 1, got {num_workers}")
    if cpus_per_worker <= 0:
        raise ValueError(f"cpus_per_worker must be positive, got {cpus_per_worker}")
    if backend == "auto":
        backend = "nccl" if use_gpu else "gloo"
    ray = _import_ray_train()
    needs = {"CPU": math.ceil(num_workers * cpus_per_worker)}
    if use_gpu:
        needs["GPU"] = num_workers
    with ray_session(ray, address, needs), _storage_dir(storage_path) as storage:
        trainer = _build_trainer(
            fn, arg, num_workers=num_workers, use_gpu=use_gpu, backend=backend,
            cpus_per_worker=cpus_per_worker, storage=storage, env=env,
        )
        return _fit(trainer)


def launch(entry: Callable[[dict[str, Any]], T], config: Config) -> T:
    """Run `entry(config as JSON)` as `distributed.launcher` says: on `num_trainers` Ray Train
    workers for "ray" (rank 0's result comes back), else right here (alone, or as one of the
    ranks torchrun started). `entry` must be a module-level function of an installed package."""
    d = config.distributed
    data = config.model_dump(mode="json")
    if d.launcher != "ray":
        return entry(data)
    return run_on_ray(
        entry,
        data,
        num_workers=d.num_trainers,
        use_gpu=d.use_gpu,
        backend=d.backend,
        address=d.ray_address,
        cpus_per_worker=d.cpus_per_trainer,
        storage_path=Path(config.output_dir) / "ray",  # shared by the nodes, like output_dir
    )


def _rank_entry(config: dict[str, Any]) -> Any:
    """What each Ray Train worker runs: the user's function on the user's argument."""
    return config["fn"](config["arg"])


def import_ray(purpose: str) -> Any:
    """`ray`, or a one-line ImportError saying that `purpose` needs it and what to install."""
    # read by Ray when it is first imported; a value the user set wins
    os.environ.setdefault("RAY_DEDUP_LOGS_SKIP_REGEX", _SKIP_LOG_LINES)
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs Ray ({exc.name or exc} is missing): {_INSTALL_HINT}"
        ) from None
    return ray


def _import_ray_train() -> Any:
    """`ray` with Ray Train's torch support, or a one-line ImportError saying what to install."""
    ray = import_ray("launcher=ray")
    try:
        import ray.train
        import ray.train.torch
    except ImportError as exc:
        raise ImportError(
            f"launcher=ray needs Ray Train ({exc.name or exc} is missing): {_INSTALL_HINT}"
        ) from None
    from ray.train.v2._internal.constants import is_v2_enabled

    if not is_v2_enabled():  # Ray Train V2 (the default in Ray 2.60) returns rank 0's value
        raise RuntimeError("run_on_ray needs Ray Train V2: unset RAY_TRAIN_V2_ENABLED=0")
    return ray


@contextmanager
def ray_session(ray: Any, address: str | None, needs: dict[str, int]) -> Iterator[bool]:
    """Use the Ray this process already has, connect to `address` (or RAY_ADDRESS), or start a
    local Ray sized for `needs` (yields True then); on exit, shut down (or disconnect from)
    what this call began."""
    if ray.is_initialized():
        _check_resources(ray, needs, local=False)
        yield False
        return
    local = address is None and not os.environ.get("RAY_ADDRESS")
    if local:
        ray.init(num_cpus=needs["CPU"], include_dashboard=False, logging_level=logging.WARNING)
    else:
        ray.init(address=address, logging_level=logging.WARNING)
    try:
        _check_resources(ray, needs, local=local)
        yield local
    finally:
        # stops the local Ray this call started; for a cluster it only disconnects this driver
        ray.shutdown()


def _check_resources(ray: Any, needs: dict[str, int], *, local: bool) -> None:
    """Ray Train waits (retrying) for resources it lacks: fail a local Ray that lacks them,
    warn for a cluster, which may be autoscaling."""
    have = ray.cluster_resources()
    short = {k: (have.get(k, 0), n) for k, n in needs.items() if have.get(k, 0) < n}
    if not short:
        return
    what = ", ".join(f"{k}: has {h:g}, the workers need {n}" for k, (h, n) in short.items())
    if local:
        raise RuntimeError(f"the local Ray lacks resources for the workers ({what})")
    logger.warning("the Ray cluster is short of resources (%s): waiting for more", what)


@contextmanager
def _storage_dir(storage_path: str | Path | None) -> Iterator[str]:
    """`storage_path`, or a temporary directory removed afterwards (never ~/ray_results)."""
    if storage_path is not None:
        yield os.fspath(storage_path)
        return
    with tempfile.TemporaryDirectory(prefix="metaagentx-ray-") as tmp:
        yield tmp


def _build_trainer(
    fn: Callable[[Any], Any],
    arg: Any,
    *,
    num_workers: int,
    use_gpu: bool,
    backend: str,
    cpus_per_worker: float,
    storage: str,
    env: Mapping[str, str] | None,
) -> Any:
    """A TorchTrainer whose workers run `fn(arg)` in a `backend` process group, no retries."""
    from ray.train import FailureConfig, LoggingConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    run_config = RunConfig(
        name=f"metaagentx-{uuid.uuid4().hex[:12]}",
        storage_path=storage,
        failure_config=FailureConfig(max_failures=0),
        worker_runtime_env={"env_vars": {**_WORKER_ENV, **(env or {})}},
        logging_config=LoggingConfig(log_level="WARNING"),  # Ray Train's own INFO lines
    )
    return TorchTrainer(
        _rank_entry,
        train_loop_config={"fn": fn, "arg": arg},
        torch_config=TorchConfig(backend=backend),
        scaling_config=ScalingConfig(
            num_workers=num_workers,
            use_gpu=use_gpu,
            resources_per_worker={"CPU": cpus_per_worker},
        ),
        run_config=run_config,
    )


def _fit(trainer: Any) -> Any:
    """Run the trainer; rank 0's return value, or RayRunError naming the failed ranks."""
    from ray.train import TrainingFailedError

    try:
        result = trainer.fit()
    except TrainingFailedError as exc:
        failures: dict[int, BaseException] = dict(getattr(exc, "worker_failures", None) or {})
        if not failures:
            raise RayRunError(f"Ray Train run failed: {_summary(exc)}") from exc
        first = min(failures)
        error = failures[first]
        ranks = ", ".join(str(r) for r in sorted(failures))
        raise RayRunError(
            f"Ray Train worker rank {first} failed: {type(error).__name__}: {error}"
            f" (failed ranks: {ranks})",
            failures,
        ) from exc
    return result.return_value


def _summary(exc: BaseException) -> str:
    """The first two non-blank lines of Ray's error ("Training failed due to ...: <cause>")."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return " / ".join(lines[:2]) if lines else type(exc).__name__
