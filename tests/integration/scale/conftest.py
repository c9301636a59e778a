"""One local Ray instance (2 CPUs) shared by every scale-out test: Ray start-up is the slow part."""

from __future__ import annotations

import os
import sys

import pytest

# Per-run uids for the sandbox inside Ray actors, away from the session executor's (tests/conftest.py) and from
# other engineers' runs on the same machine.
RAY_UID_BASE = 62200 + (os.getpid() % 200) * 8


@pytest.fixture(scope="session")
def ray_cluster():
    """The address of a local Ray instance with 2 CPUs; shut down at the end of the session."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the sandbox needs Linux")
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
