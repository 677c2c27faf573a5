"""Which weights play which role: shared model, one LoRA adapter per role, or two models.

`shared` (the paper's default) is one model; the roles differ only by prompt. `lora` puts one
PEFT adapter per role on a frozen shared base (peft's multi-adapter support: `add_adapter`,
`set_adapter`), so a role's weights are the base plus its adapter. `separate` holds two full
models. In `lora`/`separate` designs are generated and trained with the designer's weights and
agent calls with the executor's, so whoever generates or trains for a role does it inside
`policy.activate(role)` with `policy.model_for(role)`.

Parameters are grouped by *owner* (`owners()`): the optimizer unit. One owner serves both roles
in `shared`; each role owns its adapter or model otherwise, which is what keeps a frozen role's
weights bit-identical while the other role learns.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from metaagentx.rollout.roles import DESIGNER, EXECUTOR, ROLES

Sharing = Literal["shared", "lora", "separate"]
SHARED_OWNER = "policy"


@dataclass(frozen=True)
class LoraSettings:
    """LoRA adapter shape; the same for both roles."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: str | list[str] = "all-linear"  # every linear layer except the LM head
    extra: dict[str, object] = field(default_factory=dict)  # any other peft.LoraConfig field


class Policy:
    """The trainable weights of both roles under one parameter-sharing mode (see module doc).

    Build with `Policy.build`. Thread safety: in `lora`, `activate` holds a lock for its whole
    block, because switching adapters changes what every forward of the shared model computes.
    """

    def __init__(
        self,
        sharing: Sharing,
        models: Mapping[str, nn.Module],
        owner_of: Mapping[str, str],
    ) -> None:
        if sharing not in ("shared", "lora", "separate"):
            raise ValueError(f"unknown parameter sharing {sharing!r}")
        if set(owner_of) != set(ROLES) or not set(owner_of.values()) <= set(models):
            raise ValueError("owner_of must map every role to one of `models`")
        self.sharing: Sharing = sharing
        self.models: dict[str, nn.Module] = dict(models)
        self._owner_of = dict(owner_of)
        self._lock = threading.RLock()
        self._references: dict[str, nn.Module] = {}
        self._reference_ready = False

    @classmethod
    def build(
        cls,
        model: nn.Module,
        sharing: Sharing = "shared",
        *,
        designer_model: nn.Module | None = None,
        lora: LoraSettings | None = None,
        seed: int = 0,
    ) -> Policy:
        """Wrap `model` (a transformers causal LM) for `sharing`.

        separate: `model` becomes the executor and `designer_model` (default: a deep copy of
        `model`) the designer. lora: `model` becomes the frozen base of a PeftModel with
        adapters "executor" and "designer", initialised from `seed` (the caller's RNG is left
        alone); both start as the base (LoRA B is zero).
        """
        if sharing == "shared":
            return cls("shared", {SHARED_OWNER: model}, dict.fromkeys(ROLES, SHARED_OWNER))
        if sharing == "separate":
            designer = designer_model if designer_model is not None else copy.deepcopy(model)
            if designer is model:
                raise ValueError("separate needs two distinct model objects")
            models = {DESIGNER: designer, EXECUTOR: model}
            return cls("separate", models, {r: r for r in ROLES})
        if sharing == "lora":
            peft_model = _lora_model(model, lora or LoraSettings(), seed)
            policy = cls("lora", {r: peft_model for r in ROLES}, {r: r for r in ROLES})
            policy._set_adapter(peft_model, EXECUTOR)
            return policy
        raise ValueError(f"unknown parameter sharing {sharing!r}")

    @staticmethod
    def owner_roles(sharing: Sharing) -> dict[str, frozenset[str]]:
        """Owner name -> the roles it serves under `sharing`, known before any model loads
        (e.g. to size each owner's LR schedule)."""
        if sharing == "shared":
            return {SHARED_OWNER: frozenset(ROLES)}
        if sharing in ("lora", "separate"):
            return {r: frozenset({r}) for r in ROLES}
        raise ValueError(f"unknown parameter sharing {sharing!r}")

    # ---- which weights serve a role -------------------------------------------------------

    def owner_of(self, role: str) -> str:
        """The optimizer unit whose parameters `role` trains."""
        return self._owner_of[_check_role(role)]

    def model_for(self, role: str) -> nn.Module:
        """The module to call for `role` (in `lora`: the PeftModel; call it inside `activate`)."""
        return self.models[self.owner_of(role)]

    def adapter_for(self, role: str) -> str | None:
        """The PEFT adapter serving `role` (`lora` only; None otherwise)."""
        return _check_role(role) if self.sharing == "lora" else None

    @contextmanager
    def activate(self, role: str) -> Iterator[nn.Module]:
        """Make `role`'s weights the live ones for the block and yield the model to call.

        lora: sets the role's adapter and restores the previous one afterwards (under a lock,
        so a concurrent caller cannot switch adapters mid-forward). Otherwise a no-op.
        """
        model = self.model_for(role)
        if self.sharing != "lora":
            yield model
            return
        with self._lock:
            previous = model.active_adapter
            self._set_adapter(model, role)
            try:
                yield model
            finally:
                self._set_adapter(model, previous)

    def _set_adapter(self, model: nn.Module, adapter: str) -> None:
        """Switch PEFT's active adapter but keep every adapter's `requires_grad` as it was:
        peft freezes the inactive one, and FSDP2 must see the same trainable set throughout
        (the inactive adapter gets no gradient anyway: it is not in the forward)."""
        model.set_adapter(adapter)
        for role in ROLES:
            for param in _adapter_parameters(model, role):
                param.requires_grad_(True)

    # ---- what to train --------------------------------------------------------------------

    def owners(self) -> dict[str, tuple[frozenset[str], list[nn.Parameter]]]:
        """Owner name -> (roles it serves, its trainable parameters), for `RoleOptimizers`."""
        out: dict[str, tuple[frozenset[str], list[nn.Parameter]]] = {}
        for name in dict.fromkeys(self._owner_of.values()):
            roles = frozenset(r for r in ROLES if self._owner_of[r] == name)
            out[name] = (roles, self._owner_parameters(name))
        return out

    def parameters_for(self, roles: Iterable[str]) -> list[nn.Parameter]:
        """Trainable parameters updated when `roles` learn (each parameter once)."""
        names = dict.fromkeys(self.owner_of(r) for r in roles)
        return [p for name in names for p in self._owner_parameters(name)]

    def modules_for(self, roles: Iterable[str]) -> list[nn.Module]:
        """The distinct models whose forward `roles` run (one in `shared` and `lora`)."""
        seen: dict[int, nn.Module] = {}
        for role in roles:
            model = self.model_for(role)
            seen.setdefault(id(model), model)
        return list(seen.values())

    def _owner_parameters(self, name: str) -> list[nn.Parameter]:
        if self.sharing == "lora":
            return _adapter_parameters(self.models[name], name)
        return [p for p in self.models[name].parameters() if p.requires_grad]

    def named_models(self) -> dict[str, nn.Module]:
        """Each distinct model once, by a stable name: "policy" (shared), the roles
        (separate), "adapters" (lora: one model holding both adapters)."""
        if self.sharing == "lora":
            return {"adapters": self.models[DESIGNER]}
        return dict(self.models)

    def all_modules(self) -> list[nn.Module]:
        """Every distinct model this policy holds, KL references included (for sharding)."""
        seen: dict[int, nn.Module] = {}
        for model in [*self.models.values(), *self._references.values()]:
            seen.setdefault(id(model), model)
        return list(seen.values())

    def train(self, mode: bool = True) -> None:
        for model in self.modules_for(ROLES):
            model.train(mode)

    # ---- frozen reference (for the KL penalty) -----------------------------------------------

    def freeze_reference(self) -> None:
        """Keep the current weights as the KL reference. Call once, before any update (and,
        on resume, before loading the checkpoint: the reference is the initial policy).

        shared/separate: a frozen deep copy per model (memory of one more model each).
        lora: nothing to copy, the reference is the base with adapters disabled.
        """
        if self.sharing != "lora":
            for name, model in self.models.items():
                ref = copy.deepcopy(model).eval()
                ref.requires_grad_(False)
                self._references[name] = ref
        self._reference_ready = True

    @contextmanager
    def reference(self, role: str) -> Iterator[nn.Module]:
        """Yield the frozen reference model for `role` (see `freeze_reference`)."""
        if not self._reference_ready:
            raise RuntimeError("call freeze_reference() before asking for the reference model")
        if self.sharing != "lora":
            yield self._references[self.owner_of(role)]
            return
        with self._lock:
            model = self.model_for(role)
            with model.disable_adapter():
                yield model


def _lora_model(model: nn.Module, settings: LoraSettings, seed: int) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        task_type="CAUSAL_LM",
        **settings.extra,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        peft_model = get_peft_model(model, config, adapter_name=EXECUTOR)
        peft_model.add_adapter(DESIGNER, config)
    peft_model.set_adapter(EXECUTOR)
    return peft_model


def _adapter_parameters(model: nn.Module, adapter: str) -> list[nn.Parameter]:
    """Every parameter of `adapter` in a PeftModel, found through the tuner layers' dicts."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    params: list[nn.Parameter] = []
    for module in model.modules():
        if not isinstance(module, BaseTunerLayer):
            continue
        for attr in module.adapter_layer_names:
            holder = getattr(module, attr)
            if adapter in holder:
                item = holder[adapter]
                params.extend(item.parameters() if isinstance(item, nn.Module) else [item])
    if not params:
        raise ValueError(f"model has no parameters for adapter {adapter!r}")
    return params


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {ROLES}")
    return role
