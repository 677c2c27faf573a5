"""Atomic, verifiable training checkpoints that resume a run exactly.

A checkpoint holds everything that decides what the run does next: weights (or adapters),
optimizer and LR-scheduler state, every RNG (Python, NumPy, torch CPU and CUDA), and a JSON
`state` the trainer owns (step, data cursor, schedule position, ...). It is written into a
temporary directory, fsynced and renamed into place, so a crash leaves either the old or the new
checkpoint, never half of one. A manifest records a SHA-256 per file; a checkpoint whose files
do not match is skipped with a warning and the previous one is used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_PREFIX = "step-"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, partial or corrupt."""


def checkpoint_dir(root: str | Path, step: int) -> Path:
    return Path(root) / f"{_PREFIX}{step:08d}"


def refuse_to_overwrite(root: str | Path, resume_key: str) -> None:
    """Raise when `root` holds checkpoints of an earlier run that a fresh start would mix with
    (its checkpoints pruned by step, its config and metrics overwritten)."""
    found = list_checkpoints(root)
    if found:
        raise CheckpointError(
            f"{root} already holds checkpoints of an earlier run (newest: {found[-1].name}); "
            f"set {resume_key}=true to continue it, or choose another output_dir"
        )


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
    models: Mapping[str, Mapping[str, torch.Tensor]],
    optimizers: Mapping[str, Mapping[str, Any]] | None = None,
    schedulers: Mapping[str, Mapping[str, Any]] | None = None,
    state: Mapping[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    """Write checkpoint `step` atomically under `root` and keep only the newest `keep`.

    `models` maps a name to a state dict (a full model, or only a PEFT adapter's weights);
    optimizers/schedulers map names to their `state_dict()`; `state` must be JSON-serialisable.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = checkpoint_dir(root, step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        files: list[str] = []
        for name, tensors in models.items():
            path = tmp / f"model-{name}.safetensors"
            # clone: tied weights share storage, which safetensors refuses to write twice
            save_file(
                {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}, str(path)
            )
            files.append(path.name)
        for kind, group in (("optimizer", optimizers or {}), ("scheduler", schedulers or {})):
            for name, sd in group.items():
                path = tmp / f"{kind}-{name}.pt"
                torch.save(sd, path)
                files.append(path.name)
        rng_meta, rng_tensors = rng_state()
        save_file(rng_tensors, str(tmp / "rng.safetensors"))
        files.append("rng.safetensors")
        (tmp / "state.json").write_text(json.dumps({"state": dict(state or {}), "rng": rng_meta}))
        files.append("state.json")
        manifest = {"step": step, "files": {f: _sha256(tmp / f) for f in files}}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        for f in [*files, MANIFEST]:
            _fsync_file(tmp / f)
        _fsync_dir(tmp)
        if final.exists():  # re-saving a step (e.g. after a resume) replaces it
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


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


def load_checkpoint(path: str | Path, *, restore_rng: bool = True) -> dict[str, Any]:
    """Read a verified checkpoint: {"step", "models", "optimizers", "schedulers", "state"}."""
    path = Path(path)
    manifest = verify_checkpoint(path)
    out: dict[str, Any] = {
        "step": manifest["step"],
        "models": {},
        "optimizers": {},
        "schedulers": {},
        "path": path,
    }
    for name in manifest["files"]:
        if name.startswith("model-"):
            out["models"][name[len("model-") : -len(".safetensors")]] = load_file(str(path / name))
        elif name.startswith(("optimizer-", "scheduler-")):
            kind, _, rest = name.partition("-")
            out[f"{kind}s"][rest[: -len(".pt")]] = torch.load(path / name, weights_only=True)
    saved = json.loads((path / "state.json").read_text())
    out["state"] = saved["state"]
    if restore_rng:
        set_rng_state(saved["rng"], load_file(str(path / "rng.safetensors")))
    return out


def load_latest_checkpoint(root: str | Path, *, restore_rng: bool = True) -> dict[str, Any] | None:
    """The newest valid checkpoint under `root` (corrupt ones are skipped with a warning)."""
    for path in reversed(list_checkpoints(root)):
        try:
            return load_checkpoint(path, restore_rng=restore_rng)
        except CheckpointError as exc:
            log.warning("skipping checkpoint: %s", exc)
    return None


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
