"""The recipe's stages as library functions; the CLI commands (sample, critic, train) are thin wrappers.

This module is their index; each lives with its concern: :mod:`~coderl.pipelines.sampling` (sample, exec),
:mod:`~coderl.pipelines.critic` (critic train, critic score), :mod:`~coderl.pipelines.training` (SFT, RL, the chain,
repair), on the shared plumbing of :mod:`~coderl.pipelines.inputs` (the split, the actor, the prompter, the
executor) and :mod:`~coderl.pipelines.rundir` (file names, the ``--resume`` / ``--overwrite`` guard). The algorithm
itself (losses, returns, the offline pool, the loops) is in :mod:`coderl.rl` and :mod:`coderl.train`.

Every stage reads and writes plain files in the run directory (``RecipeConfig.out``) and can run alone. A stage
refuses to replace what an earlier run of it wrote (finished or not) unless asked: ``resume=True`` keeps and
continues it, ``overwrite=True`` removes it first. :func:`run_chain` runs the stages an RL run needs, each keeping
what is still valid, then RL.

Derived files record what they were made from and are matched by it, never by position, so a changed input is
recomputed (or refused), never silently reused:

* a verdict carries the ``program_key`` of its program and hidden tests and the ``settings_key`` of the execution
  settings; samples find their verdicts by that key, and the exec stage runs exactly the programs that have none;
* the critic records a fingerprint of its training examples (programs, outcomes, solutions), its settings and its
  backbone's weights; a critic made from other inputs is retrained by the chain and refused by ``--resume``;
* a score carries its sample's key, the critic's fingerprint and the scoring settings; stale scores are redone;
* samples record the fingerprint of the model that drew them; SFT and RL checkpoints record the starting model's,
  and RL's the fingerprint of its pool (or critic), so a resume with other inputs is refused.

Files (all JSONL files have one record per line; ``line`` means the line number in ``samples.jsonl``)::

    samples.jsonl            {task_id, completion, sample, completion_ids, finished}   (coderl eval reads it)
    samples.jsonl.meta.json  the model (path and fingerprint), dataset, split and sampling settings
    baseline.jsonl           the same for one greedy program per problem
    *.verdicts.jsonl         coderl eval's verdict records {task_id, sample, line, outcome, ..., program_key}
    critic/                  the critic (Critic.save) + critic_train.json (statistics, inputs fingerprint)
    scored.jsonl             {line, task_id, sample, outcome, key, critic, critic_probs, token_probs, aligned}
    sft/, rl/                checkpoints/step-N (resumable), final/ (a model directory), history.json, tensorboard/
    repair/                  pairs.jsonl (failed sample + feedback -> passing program) and pairs.json (their counts),
                             checkpoints/step-N, final/, summary.json
"""

from __future__ import annotations

from coderl.pipelines.critic import run_critic_score, run_critic_train
from coderl.pipelines.rundir import StageError
from coderl.pipelines.sampling import run_exec, run_sample
from coderl.pipelines.training import run_chain, run_repair, run_rl, run_sft

__all__ = ["StageError", "run_chain", "run_critic_score", "run_critic_train", "run_exec", "run_repair", "run_rl",
           "run_sample", "run_sft"]
