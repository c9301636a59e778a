"""The Ray executor's bookkeeping: results by request index, yielded in order, each exactly once."""

from __future__ import annotations

import pytest

from coderl.sandbox import Result
from coderl.scale.ray_executor import RayExecutor, _Ledger


def _r(i: int) -> Result:
    return Result(str(i), "passed", "ok")


def test_out_of_order_and_repeated_results_yield_each_index_once_in_order():
    led = _Ledger(5)
    assert led.add(2, _r(2)) and led.add(3, _r(3))
    assert list(led.pop_ready()) == []  # 0 is missing: nothing may overtake it
    assert led.add(0, _r(0))
    assert [r.id for r in led.pop_ready()] == ["0"]
    assert not led.add(2, _r(2)) and not led.add(0, _r(0))  # a retried chunk answering again
    assert led.add(1, _r(1)) and led.add(4, _r(4))
    assert [r.id for r in led.pop_ready()] == ["1", "2", "3", "4"]
    assert led.done and led.duplicates == 2
    with pytest.raises(IndexError):
        led.add(5, _r(5))


def test_bad_settings_are_rejected_before_ray_starts():
    with pytest.raises(ValueError, match="cache"):
        RayExecutor(cache=True)
    with pytest.raises(ValueError, match="chunk_size"):
        RayExecutor(chunk_size=0)
    with pytest.raises(ValueError, match="timeout"):
        RayExecutor(timeout=0)
