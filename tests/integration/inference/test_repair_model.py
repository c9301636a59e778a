"""A tiny repair model trained on a few (broken, fixed) pairs repairs a broken program it was trained on."""

from __future__ import annotations

import pytest


def _pairs(tasks):
    from coderl.inference.repair import Feedback, RepairExample

    out = []
    for p in tasks:
        ref = p.solutions[0]
        broken = ref.replace("return", "retrun", 1)  # a deliberate compile error on line 2
        assert broken != ref
        out.append(RepairExample(p, broken, Feedback("compile_error", "SyntaxError", 2), ref))
    return out


def test_repair_prompt_format(family_tasks):
    from coderl.inference.repair import Feedback, repair_prompt

    p = family_tasks[0]
    text = repair_prompt(p, "def f(x):\n    retrun x", Feedback("compile_error", "SyntaxError", 2))
    assert text == (f"# {p.prompt}\n# bug:\ndef f(x):\n    retrun x\n"
                    "# compile_error: SyntaxError line 2: retrun x\n# fix:\n")
    fb = Feedback("failed_test", "AssertionError", None, "assert f(1) == 2")
    t2 = repair_prompt(p, "def f(x):\n    return x", fb)
    assert t2.endswith("# failed_test: AssertionError failed: assert f(1) == 2\n# fix:\n")


@pytest.mark.slow
def test_tiny_repair_model_fixes_a_trained_bug(family_tasks, tiny_tok):
    from coderl.inference.repair import new_repair_model, repair_prompt, train_repair
    from coderl.models.generate import SamplingConfig, generate
    from coderl.train.sft import SFTConfig

    examples = _pairs(family_tasks[:4])
    model = new_repair_model(tiny_tok, None, n_positions=256, n_layer=2, n_embd=64, n_head=4, seed=0)
    hist = train_repair(model, tiny_tok, examples, SFTConfig(lr=3e-3, batch_size=4, epochs=150, warmup_steps=10),
                        progress=False)
    assert hist["pairs"] == 4 and hist["dropped"] == 0 and hist["loss"][-1] < hist["loss"][0] / 10
    e = examples[1]
    out = generate(model, tiny_tok, [repair_prompt(e.problem, e.failed, e.feedback)], 1,
                   SamplingConfig(max_new_tokens=64, greedy=True))
    assert out[0][0].text == e.fixed and e.fixed != e.failed
