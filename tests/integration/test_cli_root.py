from coderl import __version__


def test_version_prints_the_package_version(cli):
    code, output = cli("--version")
    assert code == 0 and output.strip() == __version__


def test_no_command_prints_help_and_fails(cli):
    code, output = cli()
    assert code == 2 and "exec" in output and "demo" in output
