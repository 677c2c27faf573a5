"""The training engine RL and SFT share: which weights play which role (shared, LoRA, separate),
optimizers and schedules, packing, log-probs, checkpoints and export."""
