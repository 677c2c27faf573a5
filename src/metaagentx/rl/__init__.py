"""Reinforcement learning: role-aware advantages, the PPO loss, the stagewise schedule, packing,
checkpoints."""
