"""What several commands share about their options: how a setting is named on the command line (so that a
library error names the flag to change) and the help of the execution-backend options."""

from __future__ import annotations

BACKEND_HELP = ("local (this machine's cores) or ray (sandbox workers on every node of a Ray cluster; "
                "pip install 'coderl[ray]').")
ADDRESS_HELP = "--backend ray: the Ray cluster ('auto', 'ray://host:10001'); default: a local Ray instance."


def flag(setting: str) -> str:
    """A library setting as its command-line flag: ``memory_mb`` -> ``--memory-mb``."""
    return "--" + setting.replace("_", "-")
