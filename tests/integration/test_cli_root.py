from typer.testing import CliRunner

from coderl import __version__
from coderl.cli.main import app


def test_version_prints_the_package_version():
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == __version__


def test_no_command_prints_help_and_fails():
    res = CliRunner().invoke(app, [])
    assert res.exit_code == 2 and "exec" in res.output and "demo" in res.output
