"""Launching training ranks on Ray Train workers (`run_on_ray`). Ray is optional and imported
only when `run_on_ray` is called; torchrun's ranks are read by `metaagentx.train.distributed`."""

from metaagentx.distributed.launch import RayRunError, launch, run_on_ray

__all__ = ["RayRunError", "launch", "run_on_ray"]
