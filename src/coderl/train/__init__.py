"""Supervised training stages (fine-tuning on programs); the RL stage lives in coderl.rl."""
