"""Fixtures of the adversarial sandbox tests. The helpers they share live in sandbox_helpers.py, which this
folder's test modules import by name (the folder is put on sys.path here)."""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sandbox_helpers import Aftermath, rootfs_dir  # noqa: E402

from coderl.sandbox import Executor  # noqa: E402


@pytest.fixture
def after(executor, sandbox_uids) -> Aftermath:
    return Aftermath(executor, sandbox_uids)


@pytest.fixture
def own_executor(sandbox_uids) -> Iterator[Executor]:
    """A one-worker executor for tests that may leave its server in a bad state."""
    ex = Executor(workers=1, timeout=1.0, memory_mb=1024, uid_base=sandbox_uids.start + 2)
    ex.start()
    try:
        yield ex
    finally:
        ex.close()


@pytest.fixture
def victims() -> Iterator[dict[str, Path]]:
    """World-writable directories on the host, each with a world-writable victim file."""
    token = secrets.token_hex(6)
    dirs = {
        "rootfs": Path(tempfile.mkdtemp(prefix="coderl-adv-", dir=rootfs_dir())),
        "tmp": Path(tempfile.mkdtemp(prefix="coderl-adv-", dir="/tmp")),
        "vartmp": Path(tempfile.mkdtemp(prefix="coderl-adv-", dir="/var/tmp")),
    }
    out: dict[str, Path] = {}
    for name, d in dirs.items():
        os.chmod(d, 0o777)
        v = d / "victim.txt"
        v.write_text("precious\n")
        os.chmod(v, 0o666)
        out[name] = v
    project_victim = Path(__file__).with_name(f".victim-{token}")
    project_victim.write_text("precious\n")
    os.chmod(project_victim, 0o666)
    out["project"] = project_victim
    yield out
    project_victim.unlink(missing_ok=True)
    for d in dirs.values():
        for p in d.iterdir():
            p.unlink()
        d.rmdir()
