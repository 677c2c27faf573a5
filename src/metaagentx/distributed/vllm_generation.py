"""vLLM generation for a training run, assembled in one place from `generation.vllm`.

One engine per distinct set of generating weights: one for `shared` and for `lora` (both
adapters on one base), one per role for `separate`. `colocated`: each rank starts its own
engines in their own processes (sharing its GPU: they sleep through the update). `server`:
every rank uses the same servers, the URLs given or servers rank 0 starts and shares. A role
router puts the engines behind the rollout's `agenerate` interface, and `WeightSync` moves the
trained weights to them after each update.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from metaagentx.config import Config
from metaagentx.distributed.vllm_servers import VLLMServer
from metaagentx.distributed.weight_sync import SyncCheck, WeightSync
from metaagentx.llm.batcher import RequestBatcher
from metaagentx.llm.router import Front, RoleRouter
from metaagentx.llm.vllm_backend import VLLMGenerator, engine_args
from metaagentx.llm.vllm_server import VLLMServerGenerator
from metaagentx.rollout.roles import DESIGNER, EXECUTOR, ROLES
from metaagentx.train.distributed import World
from metaagentx.train.fsdp import DTYPES
from metaagentx.train.policy import Policy
from metaagentx.train.weights import lora_rank


def engine_groups(sharing: str) -> dict[str, tuple[str, ...]]:
    """Engine name -> the roles it generates for, by parameter sharing."""
    if sharing == "separate":
        return {DESIGNER: (DESIGNER,), EXECUTOR: (EXECUTOR,)}
    return {"policy": ROLES}


class VLLMGeneration:
    """The engines of a run on this rank, the router in front of them and their weight sync."""

    def __init__(self, config: Config, policy: Policy, tokenizer: Any, world: World) -> None:
        v = config.generation.vllm
        self.config = config
        self.world = world
        self.servers: list[VLLMServer] = []
        self.engines: dict[str, VLLMGenerator | VLLMServerGenerator] = {}
        run_dir = Path(config.output_dir)
        lora = lora_rank(policy.model_for(EXECUTOR)) if policy.sharing == "lora" else None
        args = engine_args(config.model.dtype, v, seed=config.seed + world.rank, lora_rank=lora)
        try:
            for name in engine_groups(policy.sharing):
                if v.placement == "colocated":
                    self.engines[name] = VLLMGenerator.from_config(
                        config.model.path,  # type: ignore[arg-type]
                        args,
                        v,
                        tokenizer=tokenizer,
                        name=f"vLLM engine '{name}' of rank {world.rank}",
                    )
                else:
                    urls = self._server_urls(name, args, run_dir)
                    self.engines[name] = VLLMServerGenerator.from_config(
                        urls, tokenizer, config.generation
                    )
        except BaseException:
            self.close()
            raise
        by_role = {r: self.engines[n] for n, roles in engine_groups(policy.sharing).items()
                   for r in roles}
        self.router = RoleRouter(self._fronts(by_role))
        self.sync = WeightSync(
            policy,
            tokenizer,
            world,
            by_role,
            Path(v.sync_dir or run_dir / "weight-sync") / (
                "shared" if v.placement == "server" else f"rank-{world.rank}"
            ),
            shared=v.placement == "server",
            dtype=None if config.model.dtype == "auto" else DTYPES[config.model.dtype],
            check=SyncCheck(v.sync_check_tokens, v.sync_check_tolerance) if v.sync_check else None,
        )

    def _server_urls(self, name: str, args: dict[str, Any], run_dir: Path) -> list[str]:
        """The URLs configured for engine `name`, else servers rank 0 starts (all ranks get
        their URLs)."""
        v = self.config.generation.vllm
        given = v.designer_server_urls if name == DESIGNER else v.server_urls
        if given:
            return list(given)
        urls: list[str] | None = None
        if self.world.is_main:
            for index in range(v.num_servers):
                env = {"VLLM_CPU_KVCACHE_SPACE": str(v.cpu_kv_cache_gib)}
                gpus = v.server_gpus[len(self.servers)] if len(self.servers) < len(v.server_gpus) else None
                if gpus is not None:
                    env["CUDA_VISIBLE_DEVICES"] = gpus
                self.servers.append(
                    VLLMServer(
                        self.config.model.path,  # type: ignore[arg-type]
                        args,
                        log_path=run_dir / "logs" / f"vllm-{name}-{index}.log",
                        env=env,
                        startup_timeout_s=v.startup_timeout_s,
                    )
                )
            urls = [s.url for s in self.servers[-v.num_servers :]]
        return self.world.broadcast(urls)  # type: ignore[return-value]

    def _fronts(self, by_role: dict[str, VLLMGenerator | VLLMServerGenerator]) -> dict[str, Front]:
        """Engines in this process get a request batcher (they take whole lists); server
        clients send each request at once (the servers batch continuously)."""
        g = self.config.generation
        fronts: dict[int, Front] = {}
        out: dict[str, Front] = {}
        for role, engine in by_role.items():
            if id(engine) not in fronts:
                fronts[id(engine)] = (
                    engine
                    if isinstance(engine, VLLMServerGenerator)
                    else RequestBatcher(
                        engine,
                        g.max_batch_size,
                        g.batch_wait_ms / 1000,
                        max_prompt_tokens=g.max_prompt_tokens,
                    )
                )
            out[role] = fronts[id(engine)]
        return out

    def sleep(self) -> None:
        """Free the colocated engines' GPU memory for the update (a no-op elsewhere)."""
        for engine in self.engines.values():
            engine.sleep()

    def wake_up(self) -> None:
        for engine in self.engines.values():
            engine.wake_up()

    def close(self) -> None:
        router = getattr(self, "router", None)
        if router is not None:
            router.close()  # closes batchers, which close their engines
        for engine in self.engines.values():
            engine.close()
        for server in self.servers:
            server.stop()
