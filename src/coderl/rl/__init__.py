"""Reinforcement learning from execution feedback: rewards, advantages, losses (pure tensor functions) and
the training loop."""
