"""The procedural task family: templates, split, determinism, habitual and random bugs, SFT data.

Everything here runs in-process (generated code only); tests/integration/test_family_exec.py checks the same
properties through the real executor.
"""

from __future__ import annotations

import collections
import random

import pytest

from coderl.tasks.family import (
    MUTATION_WEIGHTS,
    SFT_KINDS,
    SPLITS,
    TEMPLATES,
    TEST_FRACTION,
    SFTExample,
    Template,
    corpus_text,
    count_tasks,
    fill,
    generate_tasks,
    habit_templates,
    local_outcome,
    mutate,
    random_bug,
    sft_examples,
    sft_records,
    split_of,
)
from coderl.tasks.problem import Problem, read_problems, write_problems


@pytest.fixture(scope="module")
def all_tasks() -> dict[str, list[Problem]]:
    return {s: generate_tasks(s) for s in SPLITS}


def test_about_thirty_templates_each_well_formed():
    assert 28 <= len(TEMPLATES) <= 40
    assert {t.category for t in TEMPLATES.values()} == {"arithmetic", "conditional", "list", "string"}
    assert 10 <= len(habit_templates()) < len(TEMPLATES)
    for t in TEMPLATES.values():
        assert 2 <= len(t.specs) <= 4, t.name
        assert t.signature.startswith("def f(")


def test_distinct_tasks_per_template_at_least_100(all_tasks):
    counts = count_tasks()
    assert min(counts.values()) >= 100, counts
    assert sum(counts.values()) >= 3000
    by_template = collections.defaultdict(set)
    for p in all_tasks["train"] + all_tasks["test"]:
        by_template[p.metadata["template"]].add(p.solutions[0])
    # distinct constants give distinct programs (and prompts), not just distinct ids
    assert {k: len(v) for k, v in by_template.items()} == counts


def test_split_is_disjoint_complete_and_a_pure_function_of_the_constants(all_tasks):
    train = {p.task_id for p in all_tasks["train"]}
    test = {p.task_id for p in all_tasks["test"]}
    assert not train & test
    assert len(train) + len(test) == sum(count_tasks().values())
    # no train task shares its program (template + constants) with a test task
    assert not {p.solutions[0] for p in all_tasks["train"]} & {p.solutions[0] for p in all_tasks["test"]}
    for split, tasks in all_tasks.items():
        for p in tasks:
            assert p.metadata["split"] == split == split_of(p.metadata["template"], p.metadata["consts"])
    # every template is held out in part, around TEST_FRACTION of its combinations
    per_template = count_tasks("test")
    assert min(per_template.values()) >= 10
    assert abs(sum(per_template.values()) / sum(count_tasks().values()) - TEST_FRACTION) < 0.03
    # the same task is in the same split whatever the seed or n
    for seed in (0, 1, 7):
        assert {p.task_id for p in generate_tasks("test", 200, seed=seed)} <= test


def test_split_is_stable_across_versions():
    # pinned: a change of the hash would silently move tasks between train and test of saved runs
    assert [split_of("affine", {"a": a, "b": 1}) for a in range(2, 12)] == [
        split_of("affine", {"b": 1, "a": a}) for a in range(2, 12)]
    assert split_of("clamp", {"a": 3, "d": 4}) == split_of("clamp", {"a": 3, "d": 4})
    assert {p.task_id for p in generate_tasks("test", 5, seed=0, templates=["affine"])} <= {
        f"family/affine/a={a},b={b}" for a in range(2, 12) for b in range(1, 16)
        if split_of("affine", {"a": a, "b": b}) == "test"}
    assert sorted(p.task_id for p in generate_tasks("test", templates=["affine"]))[:3] == _PINNED_AFFINE_TEST


_PINNED_AFFINE_TEST = ["family/affine/a=10,b=10", "family/affine/a=10,b=4", "family/affine/a=11,b=1"]


def test_generation_is_deterministic_balanced_and_prefix_stable():
    a = generate_tasks("train", 320, seed=3)
    b = generate_tasks("train", 320, seed=3)
    assert [p.to_dict() for p in a] == [p.to_dict() for p in b]
    assert [p.task_id for p in generate_tasks("train", 320, seed=4)] != [p.task_id for p in a]
    assert [p.task_id for p in generate_tasks("train", 100, seed=3)] == [p.task_id for p in a[:100]]
    assert len({p.task_id for p in a}) == 320
    per = collections.Counter(p.metadata["template"] for p in a)
    assert set(per) == set(TEMPLATES) and max(per.values()) - min(per.values()) <= 1
    only = generate_tasks("test", 12, seed=0, templates=["clamp", "pad_left"])
    assert {p.metadata["template"] for p in only} == {"clamp", "pad_left"}


def test_generation_errors():
    with pytest.raises(ValueError, match="split"):
        generate_tasks("valid", 10)
    with pytest.raises(ValueError, match="asked for"):
        generate_tasks("test", 10**6)
    with pytest.raises(ValueError, match="unknown template"):
        generate_tasks("train", 1, templates=["nope"])


def test_problems_are_valid_and_round_trip(all_tasks, tmp_path):
    sample = all_tasks["train"][:50] + all_tasks["test"][:50]
    for p in sample:
        assert p.tests["type"] == "assert" and len(p.tests["asserts"]) == 4
        assert p.prompt in p.metadata["phrasings"] and 2 <= len(p.metadata["phrasings"]) <= 4
        assert p.entry_point == "f" and p.program_prefix == "" and p.source == "family"
        assert p.program(p.solutions[0]).startswith(p.metadata["signature"] + "\n")
    write_problems(sample, tmp_path / "fam.jsonl")
    assert [p.to_dict() for p in read_problems(tmp_path / "fam.jsonl")] == [p.to_dict() for p in sample]


def test_every_reference_passes_and_every_habit_fails_for_every_task(all_tasks):
    for p in all_tasks["train"] + all_tasks["test"]:
        assert local_outcome(p.solutions[0], p.tests) == "passed", p.task_id
        habit = p.metadata["habit"]
        assert (habit is not None) == (p.metadata["template"] in habit_templates())
        if habit is not None:
            assert habit != p.solutions[0]
            assert local_outcome(habit, p.tests) in ("failed_test", "runtime_error"), p.task_id


def test_local_outcome_classes():
    tests = {"type": "assert", "asserts": ["assert f(1) == 2", "assert f(2) == 3"]}
    assert local_outcome("def f(x):\n    return x + 1", tests) == "passed"
    assert local_outcome("def f(x):\n    return x + 2", tests) == "failed_test"
    assert local_outcome("def f(x):\n    return y", tests) == "runtime_error"
    assert local_outcome("def f(x):\n    return x if x == 1 else x.y", tests) == "runtime_error"
    assert local_outcome("def f(x)\n    return x", tests) == "compile_error"
    assert local_outcome("raise ValueError\ndef f(x):\n    return x + 1", tests) == "runtime_error"


@pytest.mark.parametrize("kind", sorted(MUTATION_WEIGHTS))
def test_each_mutation_kind_changes_the_program(kind):
    rng = random.Random(0)
    changed = 0
    for t in TEMPLATES.values():
        ref = t.reference(t.combos()[0])
        m = mutate(ref, rng, kind)
        if m is not None:
            assert m[1] == kind and m[0] != ref
            changed += 1
    assert changed >= len(TEMPLATES) // 2
    with pytest.raises(ValueError, match="unknown mutation"):
        mutate("def f(x):\n    return x", rng, "nope")


def test_random_bugs_always_fail_and_cover_all_outcome_classes(all_tasks):
    rng = random.Random(1)
    tasks = rng.sample(all_tasks["train"], 600)
    outcomes = collections.Counter()
    for p in tasks:
        prog, kind, outcome = random_bug(p.solutions[0], p.tests, rng)
        assert kind in MUTATION_WEIGHTS and prog != p.solutions[0]
        assert outcome == local_outcome(prog, p.tests) != "passed"
        outcomes[outcome] += 1
    for cls in ("compile_error", "runtime_error", "failed_test"):
        assert outcomes[cls] >= 0.15 * len(tasks), outcomes


def test_sft_examples_mix_and_determinism(all_tasks):
    tasks = all_tasks["train"][:1500]
    recs = sft_records(tasks, random.Random(5), p_habitual=0.7, p_random=0.2)
    assert [r.task_id for r in recs] == [p.task_id for p in tasks]
    assert recs == sft_records(tasks, 5, p_habitual=0.7, p_random=0.2)  # an int seeds a Random
    kinds = collections.Counter(r.kind for r in recs)
    assert set(kinds) <= set(SFT_KINDS)
    for r, p in zip(recs, tasks, strict=True):
        assert r.prompt == p.prompt
        assert r.is_correct == (r.outcome == "passed") == (r.kind == "reference")
        assert r.outcome == local_outcome(r.program, p.tests)
        if r.kind == "habitual":
            assert r.program == p.metadata["habit"]  # the same mistake every time for this template
        if r.kind == "reference":
            assert r.program == p.solutions[0]
    n_habit = sum(p.metadata["habit"] is not None for p in tasks)
    assert abs(kinds["habitual"] / n_habit - 0.7) < 0.06
    n_random = sum(v for k, v in kinds.items() if k.startswith("random:"))
    assert abs(n_random / (len(tasks) - kinds["habitual"]) - 0.2) < 0.05
    ex = sft_examples(tasks[:20], 5, p_habitual=0.7, p_random=0.2)
    assert all(isinstance(e, SFTExample) and len(e) == 3 for e in ex)
    prompt, program, ok = ex[0]
    assert (prompt, program, ok) == (recs[0].prompt, recs[0].program, recs[0].is_correct)


def test_sft_examples_extremes_and_habit_selection(all_tasks):
    tasks = all_tasks["train"][:300]
    assert all(ok for _, _, ok in sft_examples(tasks, 0, p_habitual=0.0, p_random=0.0))
    assert not any(ok for _, _, ok in sft_examples(tasks, 0, p_habitual=1.0, p_random=1.0))
    recs = sft_records(tasks, 0, p_habitual=1.0, p_random=0.0, habitual=["clamp"])
    for r in recs:
        assert r.kind == ("habitual" if r.template == "clamp" else "reference")
    with pytest.raises(ValueError, match="without a habitual bug"):
        sft_records(tasks, 0, habitual=["affine"])
    with pytest.raises(ValueError, match="lie in"):
        sft_records(tasks, 0, p_habitual=1.5)


def test_corpus_text_covers_prompts_programs_and_habits(all_tasks):
    tasks = all_tasks["train"][:100]
    text = corpus_text(tasks)
    for p in tasks:
        assert p.solutions[0] in text and all(s in text for s in p.metadata["phrasings"])
        if p.metadata["habit"]:
            assert p.metadata["habit"] in text


def test_prompt_plus_program_fits_a_512_token_bpe(all_tasks):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus_text(all_tasks["train"]).split("\n"), trainer)
    longest = 0
    for p in all_tasks["train"] + all_tasks["test"]:
        for prog in filter(None, (p.solutions[0], p.metadata["habit"])):
            longest = max(longest, *(len(tok.encode(s + "\n" + prog).ids) for s in p.metadata["phrasings"]))
    assert longest <= 56


def test_fill_and_template_validation():
    assert fill("x[{a}:{a + d + 1}] '{w[0]}'", {"a": 2, "d": 3, "w": ("hi", "lo")}) == "x[2:6] 'hi'"
    ok = dict(name="t", category="arithmetic", specs=("A {a}.", "B {a}."), signature="def f(x):",
              body="return x + {a}", consts={"a": range(3)}, inputs=lambda a: [1, 2, 3, 4])
    t = Template(**ok)
    assert t.reference({"a": 2}) == "def f(x):\n    return x + 2"
    assert t.tests({"a": 2})["asserts"] == ["assert f(1) == 3", "assert f(2) == 4", "assert f(3) == 5",
                                            "assert f(4) == 6"]
    with pytest.raises(ValueError, match="phrasings"):
        Template(**{**ok, "specs": ("only one",)})
    with pytest.raises(ValueError, match="signature"):
        Template(**{**ok, "signature": "def g(x):"})
    with pytest.raises(ValueError, match="habit_kind"):
        Template(**{**ok, "habit": "return x"})
    with pytest.raises(ValueError, match="while"):
        Template(**{**ok, "body": "while x:\n    x -= 1\nreturn x"})
    with pytest.raises(ValueError, match="4 test inputs"):
        Template(**{**ok, "inputs": lambda a: [1]}).tests({"a": 0})


def test_load_problems_is_the_entry_point_for_the_family_too():
    from coderl.tasks import DataError, load_problems

    assert [p.task_id for p in load_problems("family:test:5", seed=1)] == [
        p.task_id for p in generate_tasks("test", 5, seed=1)]
    assert len(load_problems("family", split="train", limit=3)) == 3
    for bad in ("family:dev", "family:test:x", "family:test:1:2"):
        with pytest.raises(DataError, match="expected family, family:train or family:test"):
            load_problems(bad)
