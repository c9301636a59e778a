"""Shared fixtures. The sandbox executor is started once per session (its fork servers take a moment)."""

from __future__ import annotations

import os
import secrets
import sys
import warnings

import pytest

# Programs run as SANDBOX_UID_BASE + worker index. It is derived from our pid so that test runs of other
# engineers on the same machine (default uid base 61000) never share uids with ours: the adversarial tests
# look for processes and IPC objects left behind by exactly these uids.
SANDBOX_WORKERS = 2
SANDBOX_UID_BASE = 61200 + (os.getpid() % 200) * 4
SANDBOX_TIMEOUT = 2.0
SANDBOX_MEMORY_MB = 1024

# Put into this process's environment *before* the servers start; no sandboxed program may ever see it.
SECRET_ENV_NAME = "CODERL_TEST_SECRET"
SECRET_ENV_VALUE = "s3cr3t" + secrets.token_hex(12)


@pytest.fixture(scope="session")
def sandbox_uids() -> range:
    return range(SANDBOX_UID_BASE, SANDBOX_UID_BASE + SANDBOX_WORKERS)


@pytest.fixture(scope="session")
def secret_env():
    """(name, value) of a secret present in the test process's environment while the executor runs."""
    old = os.environ.get(SECRET_ENV_NAME)
    os.environ[SECRET_ENV_NAME] = SECRET_ENV_VALUE
    yield SECRET_ENV_NAME, SECRET_ENV_VALUE
    if old is None:
        os.environ.pop(SECRET_ENV_NAME, None)
    else:
        os.environ[SECRET_ENV_NAME] = old


@pytest.fixture(scope="session")
def executor(secret_env):
    """One sandbox Executor (2 workers) shared by the whole session; closed at the end."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the sandbox needs Linux")
    from coderl.sandbox import Executor

    ex = Executor(workers=SANDBOX_WORKERS, timeout=SANDBOX_TIMEOUT, memory_mb=SANDBOX_MEMORY_MB,
                  uid_base=SANDBOX_UID_BASE)
    ex.start()
    try:
        yield ex
    finally:
        ex.close()


@pytest.fixture()
def cli():
    """``cli(*args) -> (exit code, output)``: the real typer app, in-process (exceptions other than exits are
    raised). The app quiets the libraries for its process (environment, warning filters, transformers' logger);
    each call undoes that, or later tests, and the processes they start, would inherit it."""
    from typer.testing import CliRunner

    from coderl.cli.main import app

    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        env = dict(os.environ)
        hf = sys.modules.get("transformers.utils.logging")
        level = hf.get_verbosity() if hf is not None else None
        with warnings.catch_warnings():
            res = runner.invoke(app, [str(a) for a in args])
        os.environ.clear()
        os.environ.update(env)
        hf = sys.modules.get("transformers.utils.logging")  # perhaps first imported by this call
        if hf is not None:
            hf.set_verbosity(level if level is not None else hf.WARNING)
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise res.exception
        return res.exit_code, res.output

    return run
