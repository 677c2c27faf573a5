"""Two FSDP2 ranks (gloo, CPU) take the steps of one process, and checkpoints reshard.

Each torchrun launch runs several jobs of `distributed_worker.py` (RL in the three parameter-
sharing modes with a KL reference, entropy bonus and per-step active roles, and SFT) on fixed
data; the same jobs run here in one process; the weights must agree within 1e-5 (FSDP's
reductions are not bitwise those of one process, and AdamW turns a gradient entry near zero
into a full +-lr step whichever way it rounds, so the RL jobs use lr 1e-4: at 1e-3 the largest
difference after 3 steps was 4e-5). Checkpoints written by 2 ranks resume in one
process and the other way round, continuing exactly as the uninterrupted run.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from distributed_worker import run_job
from metaagentx.tiny import build_tiny

WORKER = Path(__file__).parent / "distributed_worker.py"
MODES = ("shared", "lora", "separate")
TOL = 1e-5


@pytest.fixture(scope="module")
def nano(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("nano"), size="nano")


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Designer and executor records of different lengths (several micro-batches per rank)."""
    path = tmp_path_factory.mktemp("sft") / "records.jsonl"
    rows = []
    for i in range(24):
        role = "designer" if i % 3 == 0 else "executor"
        task = "compute " + " + ".join(str(k) for k in range(i % 7 + 1))
        rows.append(
            {
                "role": role,
                "messages": [{"role": "user", "content": task}],
                "completion": f"the answer is {sum(range(i % 7 + 1))} " * (1 + i % 4),
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def torchrun(jobs: list[dict[str, Any]], nproc: int = 2) -> list[dict[str, Any]]:
    """Run `jobs` on `nproc` torchrun ranks; the results every rank printed."""
    spec = Path(jobs[0]["out"]).parent / f"jobs-{Path(jobs[0]['out']).name}.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps(jobs))
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={nproc}", str(WORKER), str(spec),
    ]  # fmt: skip
    # keep the caller's PYTHONPATH: a worktree's ranks must import the worktree's code
    path = os.pathsep.join(p for p in (str(WORKER.parent), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return [json.loads(f.read_text()) for job in jobs for f in Path(job["out"]).glob("result-*")]


def in_process(job: dict[str, Any]) -> dict[str, Any]:
    threads = torch.get_num_threads()
    try:
        return run_job(job)
    finally:
        torch.set_num_threads(threads)


def weights(out: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    return torch.load(Path(out) / "weights.pt", weights_only=True)


def assert_close(a: dict, b: dict, tol: float = TOL) -> float:
    """Every tensor of `a` equals `b`'s within `tol`; returns the largest difference."""
    assert a.keys() == b.keys()
    worst = 0.0
    for name in a:
        assert a[name].keys() == b[name].keys(), name
        for key in a[name]:
            diff = (a[name][key].float() - b[name][key].float()).abs().max().item()
            assert diff <= tol, f"{name}.{key} differs by {diff:.2e}"
            worst = max(worst, diff)
    return worst


def rl_job(nano: Path, out: Path, mode: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "rl", "model": str(nano), "out": str(out), "mode": mode, "steps": 3, **extra}


def sft_job(nano: Path, data: Path, out: Path) -> dict[str, Any]:
    overrides = [
        f"sft.data={data}",
        "sft.batch_size=12",
        "sft.lr=3e-3",
        "sft.warmup_steps=1",
        "sft.steps=3",
        "sft.micro_batch_tokens=96",
    ]
    return {"kind": "sft", "model": str(nano), "out": str(out), "steps": 3, "overrides": overrides}


def test_two_ranks_match_one_process_and_their_checkpoints_resume_on_one(
    nano: Path, sft_data: Path, tmp_path: Path
):
    """RL in every sharing mode (shared in 2 mini-batches) and SFT: 3 steps on 2 ranks (with
    activation checkpointing or chunked log-probs) == 3 steps in one process (without); the
    2-rank checkpoint of step 1 resumed here continues to the same weights."""
    jobs = [
        rl_job(nano, tmp_path / f"two-{m}", m, save_at=1, checkpoints=str(tmp_path / f"ck-{m}"))
        for m in MODES
    ]
    # memory options change how, not what, is computed: the ranks use them, one process not
    jobs[0]["overrides"] = ["distributed.activation_checkpointing=true"]
    # two mini-batches of whole problems: one rank holds none of the first mini-batch's
    jobs[0]["mini_batches"] = 2
    jobs[1]["chunk"] = 5  # lora: chunked log-probs through the PEFT model's head under FSDP
    jobs[2]["overrides"] = ["distributed.activation_checkpointing=true"]
    jobs[2]["chunk"] = 16
    jobs.append(sft_job(nano, sft_data, tmp_path / "two-sft"))
    jobs[3]["overrides"].append("sft.logprob_chunk_tokens=8")
    results = torchrun(jobs)
    assert sorted((r["rank"], r["world"]) for r in results) == [(0, 2)] * 4 + [(1, 2)] * 4
    for job in jobs:
        alone = {**copy.deepcopy(job), "out": job["out"].replace("two-", "one-")}
        alone.pop("save_at", None)
        alone.pop("chunk", None)
        if job["kind"] == "rl":
            alone.pop("overrides", None)
        else:
            alone["overrides"] = [o for o in job["overrides"] if "chunk" not in o]
        assert in_process(alone)["world"] == 1
        assert_close(weights(job["out"]), weights(alone["out"]))
        initial = {**alone, "out": job["out"].replace("two-", "init-"), "steps": 0}
        in_process(initial)
        with pytest.raises(AssertionError, match="differs by"):  # the steps did move them
            assert_close(weights(initial["out"]), weights(alone["out"]), tol=10 * TOL)
        if job["kind"] != "rl":
            continue
        resumed = {**alone, "out": job["out"].replace("two-", "resumed-"), "resume": True}
        resumed["checkpoints"] = job["checkpoints"]
        assert in_process(resumed)["step"] == 3
        assert_close(weights(resumed["out"]), weights(alone["out"]))


def test_a_one_process_checkpoint_resumes_on_two_ranks(nano: Path, tmp_path: Path):
    jobs = []
    for mode in ("shared", "lora"):
        alone = rl_job(nano, tmp_path / f"one-{mode}", mode, save_at=1)
        alone["checkpoints"] = str(tmp_path / f"ck-{mode}")
        in_process(alone)
        jobs.append({**alone, "out": str(tmp_path / f"two-{mode}"), "resume": True})
    # bf16 parameters and compute, fp32 reductions and master weights (FSDP mixed precision)
    mixed = rl_job(nano, tmp_path / "two-bf16", "shared")
    mixed["overrides"] = ["distributed.param_dtype=bfloat16"]
    torchrun([*jobs, mixed])
    for job in jobs:
        assert_close(weights(job["out"]), weights(job["out"].replace("two-", "one-")))
    masters = [json.loads(f.read_text())["masters"] for f in Path(mixed["out"]).glob("result-*")]
    assert masters == [["torch.float32"]] * 2  # the shards stay fp32
    trained = weights(mixed["out"])["policy"]  # the generation copy computes in bf16
    assert {t.dtype for t in trained.values()} == {torch.bfloat16}
    in_process({**mixed, "out": str(tmp_path / "init"), "steps": 0})
    initial = weights(tmp_path / "init")["policy"]
    assert any(not torch.equal(initial[k], trained[k]) for k in trained)  # and it trained


def test_cpu_offload_without_a_gpu_is_refused(nano: Path, tmp_path: Path):
    job = rl_job(nano, tmp_path / "x", "shared", overrides=["distributed.cpu_offload=true"])
    with pytest.raises(ValueError, match="no GPU memory to save"):
        in_process(job)


def test_ray_train_workers_match_one_process(nano: Path, tmp_path: Path):
    """The same 2-rank job on Ray Train workers (a local Ray cluster, gloo on CPU)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.train.torch")
    import distributed_worker
    import rl_support
    from metaagentx.distributed import run_on_ray

    modules = (distributed_worker, rl_support)  # the workers cannot import tests/ modules
    for module in modules:
        ray.cloudpickle.register_pickle_by_value(module)
    try:
        job = rl_job(nano, tmp_path / "ray-shared", "shared")
        result = run_on_ray(
            run_job, job, num_workers=2, storage_path=tmp_path / "ray", env={"OMP_NUM_THREADS": "1"}
        )
    finally:
        for module in modules:
            ray.cloudpickle.unregister_pickle_by_value(module)
    assert result == {"rank": 0, "world": 2, "step": 3, "masters": ["torch.float32"]}
    alone = {**job, "out": str(tmp_path / "one-shared")}
    assert in_process(alone)["world"] == 1
    assert_close(weights(job["out"]), weights(alone["out"]))
