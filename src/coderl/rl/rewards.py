"""Rewards from executor outcomes.

CodeRL (Le et al., 2022, Sec. 3.2) gives a program W the return

    r(W) = -1.0 if W cannot be compiled, -0.6 if it raises at run time, -0.3 if a unit test fails, +1.0 if all pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from coderl.sandbox.schema import OUTCOME_CLASSES

CODERL_RETURNS: Mapping[str, float] = {"compile_error": -1.0, "runtime_error": -0.6, "failed_test": -0.3,
                                       "passed": 1.0}
BINARY_RETURNS: Mapping[str, float] = {"compile_error": 0.0, "runtime_error": 0.0, "failed_test": 0.0,
                                       "passed": 1.0}


def outcome_reward(outcome: str, table: Mapping[str, float] = CODERL_RETURNS) -> float:
    """The return of one program given its executor outcome."""
    try:
        return table[outcome]
    except KeyError:
        raise ValueError(f"unknown outcome {outcome!r}; expected one of {', '.join(OUTCOME_CLASSES)}") from None


def outcome_rewards(outcomes: Iterable[str], table: Mapping[str, float] = CODERL_RETURNS) -> list[float]:
    return [outcome_reward(o, table) for o in outcomes]
