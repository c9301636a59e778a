"""The TRL reward function, called exactly as GRPOTrainer calls a plain-function reward (trl not installed)."""

from __future__ import annotations

import pytest

from coderl.integrations.trl import ExecutionReward, dataset_rows
from coderl.tasks.problem import Problem

PROBLEMS = [
    Problem(task_id="t/add", prompt="Add a and b.", entry_point="add",
            tests={"type": "assert", "asserts": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]}),
    Problem(task_id="t/echo", prompt="Print the input line.",
            tests={"type": "stdio", "inputs": ["hi\n"], "outputs": ["hi\n"]}),
]


def test_grpo_calling_convention(executor):
    rows = dataset_rows(PROBLEMS)
    assert [r["task_id"] for r in rows] == ["t/add", "t/echo"] and "QUESTION" in rows[0]["prompt"]
    reward = ExecutionReward(PROBLEMS, executor=executor)
    # GRPOTrainer: num_generations completions per prompt, each dataset column repeated once per completion
    completions = ["def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a - b\n",
                   "def add(a, b)\n    return a\n", "print(input()[5])\n"]
    task_id = ["t/add", "t/add", "t/add", "t/echo"]
    prompts = [rows[0]["prompt"]] * 3 + [rows[1]["prompt"]]
    out = reward(prompts=prompts, completions=completions, completion_ids=[[1]] * 4, trainer_state=None,
                 task_id=task_id, prompt_len=[3, 3, 3, 4])
    assert out == [1.0, -0.3, -1.0, -0.6]
    assert reward.__name__ == "coderl_execution_reward"


def test_conversational_completions_are_extracted(executor):
    reward = ExecutionReward(PROBLEMS, executor=executor, returns={"passed": 1.0, "failed_test": 0.0,
                                                                   "runtime_error": 0.0, "compile_error": 0.0})
    msg = [{"role": "assistant", "content": "Here you go:\n```python\nprint(input())\n```\nDone."}]
    assert reward(prompts=[[{"role": "user", "content": "x"}]], completions=[msg], task_id=["t/echo"]) == [1.0]
    raw = ExecutionReward(PROBLEMS, executor=executor, extract=False)
    assert raw(prompts=["p"], completions=[msg], task_id=["t/echo"]) == [-1.0]  # prose does not compile


def test_conversational_rows_are_the_recipe_chat_messages(executor):
    from coderl.tasks.prompt import DEFAULT_SYSTEM, chat_request

    rows = dataset_rows(PROBLEMS, conversational=True)
    assert rows[0]["prompt"] == [{"role": "system", "content": DEFAULT_SYSTEM},
                                 {"role": "user", "content": chat_request(PROBLEMS[0])}]
    assert dataset_rows(PROBLEMS, conversational=True, system="")[1]["prompt"] == [
        {"role": "user", "content": chat_request(PROBLEMS[1])}]
    assert "standard input" in chat_request(PROBLEMS[1]) and "function" in chat_request(PROBLEMS[0])
    reward = ExecutionReward(PROBLEMS, executor=executor)
    reply = [{"role": "assistant", "content": "Sure.\n```python\ndef add(a, b):\n    return a + b\n```"}]
    assert reward(prompts=[rows[0]["prompt"]], completions=[reply], task_id=["t/add"]) == [1.0]


def test_missing_column_and_unknown_task(executor):
    reward = ExecutionReward(PROBLEMS, executor=executor)
    with pytest.raises(ValueError, match="needs the dataset column 'task_id'"):
        reward(prompts=["p"], completions=["x"], problem=["t/add"])
    with pytest.raises(KeyError, match="unknown task id 't/nope'"):
        reward(prompts=["p"], completions=["x"], task_id=["t/nope"])
