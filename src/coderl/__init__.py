"""coderl: reinforcement learning from unit-test execution feedback for code language models."""

__version__ = "0.1.0"
