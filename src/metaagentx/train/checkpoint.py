"""Atomic, verifiable training checkpoints that resume a run exactly, at any world size.

A checkpoint holds everything that decides what the run does next: weights (or adapters) and
optimizer moments through `torch.distributed.checkpoint` (each rank writes its shards; any
world size can read them back, so a run saved by 8 ranks resumes on 4 or on 1), small objects
rank 0 owns (LR-scheduler states), every rank's RNGs (Python, NumPy, torch CPU and CUDA), and
a JSON `state` the trainer owns (step, data cursor, schedule position, ...). It is written into
a temporary directory, fsynced and renamed into place by rank 0 once every rank has written,
so a crash leaves either the old or the new checkpoint, never half of one. A manifest records
a SHA-256 per file; a checkpoint whose files do not match is skipped with a warning and the
previous one is used. The run directory must be on a filesystem all ranks share.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed.checkpoint as dcp
from safetensors.torch import load_file, save_file
from torch.distributed.checkpoint.api import CheckpointException

from metaagentx.errors import UserError
from metaagentx.train.distributed import World

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_WEIGHTS = "weights"  # the DCP directory: model and optimizer shards
_OBJECTS = "objects.pt"
_SINGLE = World()
_PREFIX = "step-"


class CheckpointError(UserError, RuntimeError):
    """A checkpoint is missing, partial or corrupt."""


def checkpoint_dir(root: str | Path, step: int) -> Path:
    return Path(root) / f"{_PREFIX}{step:08d}"


RUN_OUTPUTS = ("checkpoints", "metrics.jsonl", "samples", "tensorboard", "tracking.json", "wandb")
"""What a training run writes into its run directory and a later fresh run must not mix with."""


def refuse_to_overwrite(run_dir: str | Path, resume_key: str, *, resume: bool = False) -> None:
    """Raise when a fresh start (no resume, or a resume with no checkpoint to resume from) would
    mix with an earlier run's outputs in `run_dir`: checkpoints pruned by step, metrics appended,
    TensorBoard curves and samples interleaved."""
    root = Path(run_dir)
    checkpoints = list_checkpoints(root / "checkpoints")
    if resume and checkpoints:
        return
    found = [name for name in RUN_OUTPUTS if (root / name).exists()]
    if not found:
        return
    held = ", ".join(found)
    if checkpoints:
        held += f"; newest checkpoint {checkpoints[-1].name}"
        fix = f"set {resume_key}=true to continue it"
    else:
        fix = "it has no checkpoint to continue from: delete those files"
    raise CheckpointError(
        f"{root} already holds an earlier run ({held}); {fix}, or choose another output_dir"
    )


def clear_run_outputs(run_dir: str | Path) -> None:
    """Delete an earlier run's outputs (`RUN_OUTPUTS`) so a fresh run may start in `run_dir`."""
    for name in RUN_OUTPUTS:
        path = Path(run_dir) / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def list_checkpoints(root: str | Path) -> list[Path]:
    """Completed checkpoint directories under `root`, oldest first (temp dirs excluded)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [
        p
        for p in root.iterdir()
        if p.is_dir() and p.name.startswith(_PREFIX) and p.name[len(_PREFIX) :].isdigit()
    ]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX) :]))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU) from one number."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Every RNG's state as (JSON-able part, tensor part)."""
    version, internal, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    meta = {
        "python": [version, list(internal), gauss],
        "numpy": [np_name, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)],
    }
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = state
    return meta, tensors


def set_rng_state(meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(t for t in tensors if t.startswith("torch_cuda_"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(
    root: str | Path,
    step: int,
    *,
    tensors: Mapping[str, Any],
    objects: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
    keep: int = 2,
    world: World = _SINGLE,
) -> Path:
    """Write checkpoint `step` atomically under `root` and keep only the newest `keep`.

    Every rank calls this. `tensors` is a (nested) state dict of tensors or DTensors, e.g.
    from `get_model_state_dict` / `get_optimizer_state_dict`, saved with DCP; `objects` are
    torch.save-able values and `state` JSON values, both taken from rank 0.
    """
    root = Path(root)
    final = checkpoint_dir(root, step)
    tmp = root / f".tmp-{final.name}"
    if world.is_main:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    world.barrier()
    try:
        with _single_process_is_intended():
            dcp.save(
                dict(tensors), checkpoint_id=str(tmp / _WEIGHTS), no_dist=not world.distributed
            )
        rng_meta, rng_tensors = rng_state()
        save_file(rng_tensors, str(tmp / f"rng-{world.rank}.safetensors"))
        (tmp / f"rng-{world.rank}.json").write_text(json.dumps(rng_meta))
        if world.is_main:
            torch.save(dict(objects or {}), tmp / _OBJECTS)
            (tmp / "state.json").write_text(json.dumps({"state": dict(state or {})}))
        world.barrier()
        if world.is_main:
            _seal(tmp, final, step)
    except BaseException:
        if world.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    world.barrier()
    if world.is_main:
        for old in list_checkpoints(root)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _seal(tmp: Path, final: Path, step: int) -> None:
    """Write the manifest, fsync everything and rename `tmp` into place."""
    files = sorted(str(f.relative_to(tmp)) for f in tmp.rglob("*") if f.is_file())
    manifest = {"step": step, "files": {f: _sha256(tmp / f) for f in files}}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    for f in [*files, MANIFEST]:
        _fsync_file(tmp / f)
    for directory in {(tmp / f).parent for f in files} | {tmp}:
        _fsync_dir(directory)
    if final.exists():  # re-saving a step (e.g. after a resume) replaces it
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(final.parent)


def verify_checkpoint(path: str | Path) -> dict[str, Any]:
    """The manifest of a complete checkpoint whose files match their checksums; else raises."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise CheckpointError(f"{path}: no {MANIFEST} (partial checkpoint)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: unreadable manifest: {exc}") from exc
    for name, digest in manifest["files"].items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"{path}: missing file {name}")
        if _sha256(file) != digest:
            raise CheckpointError(f"{path}: checksum mismatch in {name}")
    return manifest


def load_checkpoint(
    path: str | Path,
    *,
    tensors: Mapping[str, Any],
    restore_rng: bool = True,
    world: World = _SINGLE,
) -> dict[str, Any]:
    """Read a verified checkpoint into `tensors` (in place, resharded to this world) and return
    {"step", "objects", "state", "path"}. RNGs come from this rank's file, or rank 0's when the
    checkpoint was written by fewer ranks."""
    path = Path(path)
    manifest = verify_checkpoint(path)
    try:
        with _single_process_is_intended():
            dcp.load(
                dict(tensors), checkpoint_id=str(path / _WEIGHTS), no_dist=not world.distributed
            )
    except (Exception, CheckpointException) as exc:  # DCP raises a BaseException
        raise CheckpointError(f"{path}: its weights do not fit this run: {exc}") from exc
    objects = torch.load(path / _OBJECTS, weights_only=False)
    saved = json.loads((path / "state.json").read_text())
    if restore_rng:
        rank = world.rank if (path / f"rng-{world.rank}.json").is_file() else 0
        meta = json.loads((path / f"rng-{rank}.json").read_text())
        set_rng_state(meta, load_file(str(path / f"rng-{rank}.safetensors")))
    return {"step": manifest["step"], "objects": objects, "state": saved["state"], "path": path}


def load_latest_checkpoint(
    root: str | Path,
    *,
    tensors: Mapping[str, Any],
    restore_rng: bool = True,
    world: World = _SINGLE,
) -> dict[str, Any] | None:
    """The newest valid checkpoint under `root` (corrupt ones are skipped with a warning)."""
    for path in reversed(list_checkpoints(root)):
        try:
            return load_checkpoint(path, tensors=tensors, restore_rng=restore_rng, world=world)
        except CheckpointError as exc:
            log.warning("skipping checkpoint: %s", exc)
    return None


@contextmanager
def _single_process_is_intended() -> Iterator[None]:
    """DCP warns on every save and load without a process group; one process is our default."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is (disabled|unavailable)")
        yield


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
