"""Recipe configs: YAML + key=value overrides, errors that name the field, the shipped presets."""

from __future__ import annotations

from pathlib import Path

import pytest

from coderl.config import ConfigError, parse_override
from coderl.pipelines.recipe import RecipeConfig, load_recipe, save_resolved

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def test_overrides_are_yaml_values():
    assert parse_override("rl.lr=1e-5") == (["rl", "lr"], "1e-5")  # a string here; the field type makes it float
    cfg = load_recipe(None, ["rl.lr=1e-5", "sampling.n=4", "model.lora.enabled=true", "critic.max_length=null",
                             "model.lora.target_modules=[q, v]", "execution.timeout=3"])
    assert cfg.rl.lr == 1e-5 and cfg.sampling.n == 4 and cfg.model.lora.enabled
    assert cfg.critic.max_length is None and cfg.model.lora.target_modules == ["q", "v"]
    assert isinstance(cfg.execution.timeout, float)


def test_sections_keep_the_recipe_defaults():
    cfg = load_recipe(None, ["rl.steps=7"])
    assert cfg.rl.steps == 7 and cfg.rl.mode == RecipeConfig().rl.mode == "offline"
    assert cfg.rl.lr == RecipeConfig().rl.lr
    cfg = load_recipe(None, ["repair.train.epochs=5"])  # nested: the recipe's repair lr, not SFTConfig's
    assert cfg.repair.train.epochs == 5.0 and cfg.repair.train.lr == RecipeConfig().repair.train.lr == 2e-5


@pytest.mark.parametrize("override, message", [
    ("rl.lrr=1", "unknown field 'rl.lrr'"),
    ("colour=red", "unknown field 'colour'"),
    ("sampling.n=2.5", "field 'sampling.n' must be int"),
    ("model.lora.enabled=maybe", "field 'model.lora.enabled' must be bool"),
    ("rl=3", "'rl' must be a mapping"),
    ("model.lora.r=0", "model.lora.r must be >= 1"),
    ("execution.checker=loose", "execution.checker must be 'default' or 'apps'"),
    ("rl.precision=fp8", "precision must be 'fp32', 'bf16' or 'fp16'"),
    ("rl.grad_accum=0", "grad_accum must be >= 1"),
    ("novalue", "expected key=value"),
    ("repair.samples_per_problem=0", "repair.samples_per_problem must be >= 1"),
    ("execution.backend=spark", "execution.backend must be one of local, ray, got 'spark'"),
    ("execution.address=auto", "execution.address is for backend 'ray'"),
    ("repair.train.lr=fast", "field 'repair.train.lr' must be float"),
    ("critic.precision=fp8", "critic.precision must be one of fp32, bf16, fp16"),
    ("critic.grad_accum=17", "critic.grad_accum must be between 1 and critic.batch_size"),
    ("prompt.format=instruct", "prompt.format must be one of plain, chat, got 'instruct'"),
])
def test_bad_settings_name_the_field(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_recipe(None, [override])


def test_offline_grpo_rejected_with_the_fix():
    with pytest.raises(ConfigError, match="use algo 'coderl'"):
        load_recipe(None, ["rl.algo=grpo"])
    assert load_recipe(None, ["rl.algo=grpo", "rl.mode=online"]).rl.algo == "grpo"


def test_yaml_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_recipe(tmp_path / "x.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {path: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_recipe(bad)
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_recipe(bad)
    bad.write_text("sampling: {n: 3, tempreature: 1}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown field 'sampling.tempreature'"):
        load_recipe(bad)


def test_resolved_config_round_trips(tmp_path):
    cfg = load_recipe(CONFIGS / "apps_codet5.yaml", ["sampling.n=3"])
    path = save_resolved(cfg, tmp_path / "resolved.yaml")
    assert load_recipe(path) == cfg


def test_paper_presets():
    apps = load_recipe(CONFIGS / "apps_codet5.yaml")
    assert (apps.model.kind, apps.sampling.n, apps.sampling.temperature) == ("seq2seq", 20, 0.6)
    assert apps.critic.backbone.endswith("codet5-base") and apps.rl.mode == "offline" and apps.rl.algo == "coderl"
    assert apps.execution.checker == "apps"
    mbpp = load_recipe(CONFIGS / "mbpp_causal.yaml")
    assert (mbpp.model.kind, mbpp.sampling.temperature, mbpp.model.lora.enabled) == ("causal", 1.2, True)
