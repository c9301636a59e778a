"""Instruct models (``prompt.format: chat``): prompts through the tokenizer's chat template, code taken out of the
reply, and the configs/mbpp_chat.yaml preset run end to end on the tiny Qwen2 chat model through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import arch_models as am
import pytest
import tiny_models as tm

from coderl.tasks import load_problems
from coderl.tasks.problem import Problem
from coderl.tasks.prompt import DEFAULT_SYSTEM, PLAIN, NoChatTemplate, Prompter, chat_request, format_prompt

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


@pytest.fixture(scope="module")
def toks():
    made: dict = {}

    def get(name: str):
        if name not in made:
            made[name] = am.tokenizer(am.ARCHS[name])
        return made[name]

    return get


@pytest.fixture(scope="module")
def mbpp() -> list[Problem]:
    return load_problems("mbpp", tm.MBPP_FILE, "test")


def records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_plain_is_format_prompt_and_the_reply_as_it_stands(mbpp):
    p = mbpp[0]
    assert PLAIN(p) == format_prompt(p) and not PLAIN.chat
    assert PLAIN.target(p, "x = 1\n") == "x = 1\n"
    assert PLAIN.completion(p, "Sure:\n```python\nx = 1\n```") == "Sure:\n```python\nx = 1\n```"


def test_chat_prompt_is_the_template_with_system_and_problem(toks, mbpp):
    tok, p = toks("qwen2"), mbpp[0]
    text = Prompter("chat", tok)(p)
    assert text == (f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\n{chat_request(p)}<|im_end|>\n"
                    "<|im_start|>assistant\n")
    assert p.prompt.strip() in chat_request(p) and "QUESTION:" not in text
    assert Prompter("chat", tok, system="")(p).startswith("<|im_start|>user\n")


@pytest.mark.parametrize("arch", ["llama", "gemma"])
def test_one_bos_whether_the_template_or_the_tokenizer_writes_it(arch, toks, mbpp):
    """Gemma's template writes bos and its tokenizer adds one too; Llama's only the tokenizer: one bos either way."""
    from coderl.models.tokenizer import encode_pairs

    tok = toks(arch)
    prompt = Prompter("chat", tok)(mbpp[0])
    p_ids, _ = encode_pairs(tok, [prompt], ["x"])
    assert p_ids[0][0] == tok.bos_token_id and p_ids[0].count(tok.bos_token_id) == 1


def test_sft_target_is_a_fenced_reply_and_the_code_comes_back_out(toks, mbpp):
    chat = Prompter("chat", toks("qwen2"))
    p, sol = mbpp[0], mbpp[0].solutions[0].replace("\r\n", "\n")
    target = chat.target(p, sol)
    assert target.startswith("```python\n") and target.endswith("\n```")
    assert chat.completion(p, target) == sol.rstrip("\n") + "\n"
    reply = "Here is the function:\n\n```python\ndef f(x):\n    return x\n```\n\nIt returns x."
    assert chat.completion(p, reply) == "def f(x):\n    return x\n"


def test_completion_style_problem_round_trips():
    head = "def f(x):\n    \"\"\"Double x.\"\"\"\n"
    p = Problem(task_id="H/0", prompt=head, tests={}, entry_point="f", program_prefix=head,
                solutions=["    return 2 * x\n"])
    chat = Prompter("chat", am.tokenizer(am.ARCHS["qwen2"]))
    body = chat.completion(p, chat.target(p, p.solutions[0]))
    assert p.program(body).endswith("return 2 * x\n") and "```" not in p.program(body)
    assert compile(p.program(body), "x", "exec")


def test_a_tokenizer_without_a_chat_template_is_refused_by_name(toks):
    with pytest.raises(NoChatTemplate, match="tokenizer of models/x has no chat template"):
        Prompter("chat", toks("gpt2"), where="models/x")
    with pytest.raises(ValueError, match="prompt format must be one of plain, chat"):
        Prompter("instruct")


def _overrides(tmp_path: Path, model_dir: Path) -> list[str]:
    """The preset, shrunk to the tiny model (512 positions: no system message) and the fixture problems."""
    return [f"out={tmp_path / 'run'}", "prompt.system=''", f"model.path={model_dir}", "model.device=cpu",
            "model.lora.r=4",
            f"data.path={tm.MBPP_FILE}", "data.train_split=test",
            "sampling.n=2", "sampling.max_new_tokens=24", "sampling.batch_size=8", "sampling.problems_per_chunk=2",
            "execution.workers=2", "execution.timeout=2.0",
            "critic.epochs=1", "critic.lr=0.001", "critic.batch_size=8",
            "sft.lr=0.003", "sft.batch_size=4", "sft.epochs=1.0", "sft.warmup_steps=0", "sft.precision=fp32",
            "rl.steps=2", "rl.problems_per_step=2", "rl.samples_per_problem=2", "rl.lr=0.001", "rl.sft_batch=2",
            "rl.max_new_tokens=24", "rl.grad_accum=1", "rl.precision=fp32", "rl.checkpoint_every=1",
            "repair.samples_per_problem=1", "repair.max_new_tokens=16", "repair.positions=600",
            "repair.train.batch_size=4", "repair.train.grad_accum=1", "repair.train.epochs=1.0",
            "repair.train.warmup_steps=0", "repair.train.precision=fp32"]


@pytest.mark.slow
def test_chat_preset_runs_every_stage_on_the_tiny_chat_model(tmp_path, cli, mbpp):
    """configs/mbpp_chat.yaml: sft -> sample -> exec -> critic train/score -> offline RL -> online RL -> repair ->
    eval of the samples, through the CLI, with model.path the tiny Qwen2 chat model."""
    from coderl.models.actor import load_model
    from coderl.models.generate import SamplingConfig, generate
    from coderl.pipelines.recipe import load_recipe
    from coderl.utils.seeding import stream_seed

    model_dir = am.save("qwen2", tmp_path / "qwen2")
    preset = CONFIGS / "mbpp_chat.yaml"
    assert load_recipe(preset).prompt.format == "chat"
    over, run = _overrides(tmp_path, model_dir), tmp_path / "run"
    code, out = cli("train", "--stage", "sft", "-c", preset, "--no-progress", *over)
    assert code == 0, out
    code, out = cli("train", "--stage", "rl", "-c", preset, "--no-progress", *over)  # sample, exec, critic, score, RL
    assert code == 0, out

    meta = json.loads((run / "samples.jsonl.meta.json").read_text())
    assert meta["prompt"]["format"] == "chat"
    samples = records(run / "samples.jsonl")
    chat = Prompter("chat", load_model(model_dir)[1], system="")
    by_id = {p.task_id: p for p in mbpp}
    assert samples and all(s["solution"] == chat.completion(by_id[s["task_id"]], s["completion"]) for s in samples)
    # the first chunk's samples are exactly what the SFT model draws for the chat prompts (the greedy baselines of
    # a random tiny model are the same for any prompt, so they would not tell)
    model, tok = load_model(run / "sft" / "final")
    first = list(dict.fromkeys(s["task_id"] for s in samples))[:2]
    sampling = SamplingConfig(max_new_tokens=24, temperature=1.2, top_p=0.95, seed=stream_seed(0, 0))
    want = generate(model, tok, [chat(by_id[t]) for t in first], 2, sampling, batch_size=8)
    assert [s["completion_ids"] for s in samples[:4]] == [list(c.token_ids) for o in want for c in o]
    assert len(records(run / "samples.verdicts.jsonl")) == len(samples)
    assert all(s["aligned"] for s in records(run / "scored.jsonl"))
    assert len(json.loads((run / "rl" / "history.json").read_text())) == 2

    code, out = cli("train", "--stage", "rl", "-c", preset, "--no-progress", "--overwrite", *over, "rl.mode=online",
                    "rl.steps=1")
    assert code == 0, out
    assert len(json.loads((run / "rl" / "history.json").read_text())) == 1
    code, out = cli("train", "--stage", "repair", "-c", preset, "--no-progress", *over)
    assert code == 0, out
    assert json.loads((run / "repair" / "summary.json").read_text())["steps"] > 0
    code, out = cli("eval", "--dataset", "mbpp", "--path", tm.MBPP_FILE, "--split", "test", "--samples",
                    run / "samples.jsonl", "--workers", "2", "--output", tmp_path / "eval", "--no-progress")
    assert code == 0, out


def test_chat_with_a_model_without_a_template_exits_2_naming_the_field_and_dir(tmp_path, cli):
    model_dir = am.save("gpt2", tmp_path / "gpt2")
    code, out = cli("train", "--stage", "sft", "-c", CONFIGS / "mbpp_chat.yaml", "--no-progress",
                    *_overrides(tmp_path, model_dir))
    assert code == 2, out
    assert f"prompt.format is 'chat' but the tokenizer of {model_dir} has no chat template" in out
    assert "Traceback" not in out


def test_a_rollout_backend_with_chat_prompts_is_refused(toks):
    """Ray rollout workers render plain prompts; RL with chat prompts must not silently mix the two."""
    from coderl.rl.config import RLConfig
    from coderl.rl.loop import train_rl

    with pytest.raises(ValueError, match="chat prompts need the local one"):
        train_rl(None, toks("qwen2"), [], None, RLConfig(mode="online", algo="grpo"), rollout_backend=object(),
                 prompter=Prompter("chat", toks("qwen2")))


def test_data_show_renders_the_chat_prompt(tmp_path, cli, toks):
    toks("qwen2").save_pretrained(tmp_path / "chat")
    code, out = cli("data", "show", "11", "--dataset", "mbpp", "--path", tm.MBPP_FILE, "--chat", tmp_path / "chat",
                    "--system", "Be brief.")
    assert code == 0, out
    assert "model prompt (chat template)" in out and "<|im_start|>system" in out and "Be brief." in out
    assert "<|im_start|>assistant" in out and "QUESTION:" not in out
    toks("gpt2").save_pretrained(tmp_path / "plain")
    code, out = cli("data", "show", "--dataset", "mbpp", "--path", tm.MBPP_FILE, "--chat", tmp_path / "plain")
    assert code == 2 and f"tokenizer of {tmp_path / 'plain'} has no chat template" in out
