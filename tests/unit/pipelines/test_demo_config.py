"""The demo's configuration: presets load, typos are errors that name the field, bad combinations are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from coderl.pipelines.demo import DemoConfig, load_demo_config
from coderl.rl.config import RLConfig

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def test_shipped_presets_load_and_match_the_defaults():
    cfg = load_demo_config(CONFIGS / "demo.yaml")
    assert cfg.to_dict() == DemoConfig().to_dict()
    coderl = load_demo_config(CONFIGS / "demo_coderl.yaml", ["seed=3"])
    assert coderl.algo == coderl.rl.algo == "coderl" and coderl.seed == 3


def test_unknown_fields_are_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rl: {stpes: 3}\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown field 'rl.stpes'"):
        load_demo_config(bad)
    bad.write_text("eval_task: 3\n")
    with pytest.raises(ValueError, match=r"unknown field 'eval_task'"):
        load_demo_config(bad)


def test_invalid_yaml_and_values(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("rl: [1, 2\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_demo_config(f)
    f.write_text("rl: {algo: ppo}\n")
    with pytest.raises(ValueError, match="algo must be one of"):
        load_demo_config(f)
    with pytest.raises(ValueError, match="eval_samples must be >= 5"):
        DemoConfig(eval_samples=2)


def test_rl_config_rejects_bad_combinations():
    with pytest.raises(ValueError, match="samples_per_problem >= 2"):
        RLConfig(algo="grpo", samples_per_problem=1)
    with pytest.raises(ValueError, match="leave_one_out only applies"):
        RLConfig(algo="coderl", leave_one_out=True)
    with pytest.raises(ValueError, match="unknown field"):
        RLConfig.from_dict({"step": 3})


def test_algo_flag_sets_the_rl_algorithm():
    assert DemoConfig(algo="coderl").rl.algo == "coderl"
    assert DemoConfig.quick(algo="coderl").rl.algo == "coderl"


def test_each_named_algorithm_fills_the_rl_settings():
    from coderl.rl.config import PRESETS

    for name, fields in PRESETS.items():
        rl = DemoConfig(algo=name).rl
        assert all(getattr(rl, k) == v for k, v in fields.items()), name
        assert rl.steps == 80 and rl.lr == 1.5e-4  # the demo's own settings stay


def test_an_explicit_rl_setting_wins_over_the_algorithm_and_a_conflicting_rl_algo_is_refused(tmp_path):
    cfg = DemoConfig.from_dict({"algo": "ppo", "rl": {"clip_low": 0.1}})
    assert cfg.rl.clip_low == 0.1 and cfg.rl.epochs == 2
    with pytest.raises(ValueError, match="choose the algorithm with the top-level algo"):
        DemoConfig.from_dict({"algo": "grpo", "rl": {"algo": "coderl"}})


@pytest.mark.parametrize("override, message", [
    ("eval_tasks=ten", "field 'eval_tasks' must be int, got 'ten'"),
    ("rl.lr=fast", "field 'rl.lr' must be float, got 'fast'"),
    ("sft.epochs=[1]", "field 'sft.epochs' must be float"),
    ("model=4", "'model' must be a mapping"),
    ("critic.balance_classes=yes please", "must be bool"),
])
def test_wrong_types_are_errors_naming_the_field(override, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        load_demo_config(None, [override])


def test_overrides_are_built_like_the_file_and_a_numeric_string_is_a_number(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("rl: {lr: 1e-5}\neval_tasks: 80\n")  # YAML 1.1 reads 1e-5 (no dot) as a string
    cfg = load_demo_config(f, ["eval_tasks=96", "rl.steps=10"])
    assert cfg.rl.lr == 1e-5 and isinstance(cfg.rl.lr, float) and cfg.eval_tasks == 96 and cfg.rl.steps == 10
    assert load_demo_config(None, ["rl.lr=3"]).rl.lr == 3.0


def test_quick_is_a_preset_under_the_file_and_the_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("eval_tasks: 64\n")
    cfg = load_demo_config(f, ["seed=2"], quick=True)
    assert cfg.eval_tasks == 64 and cfg.seed == 2 and cfg.rl.steps == 4 and cfg.eval_samples == 5
    assert DemoConfig.quick(seed=2).to_dict() == load_demo_config(None, ["seed=2"], quick=True).to_dict()
