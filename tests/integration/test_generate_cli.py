"""``coderl generate``'s execution options are eval's (one executor factory, coderl.scale.make_executor): a
setting that cannot work exits 2 naming the flag, before any input is read or model loaded."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("args, message", [
    (("--backend", "spark"), "--backend must be one of local, ray, got 'spark'"),
    (("--address", "auto"), "--address needs --backend ray"),
    (("--timeout", "0"), "--timeout must be positive"),
])
def test_bad_execution_options_exit_2_naming_the_flag(tmp_path, cli, args, message):
    code, out = cli("generate", "--actor", tmp_path / "no-model", "--problems", tmp_path / "no-problems.jsonl",
                    "-o", tmp_path / "g.jsonl", "--no-progress", *args)
    assert code == 2 and message in out and "Traceback" not in out, out
    assert not (tmp_path / "g.jsonl").exists()
