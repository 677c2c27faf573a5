"""Benchmark evaluation (avg@k with confidence intervals), design-structure analysis and the
HTML report of a run. Heavy parts (rollout, matplotlib) load only when their module is used."""
