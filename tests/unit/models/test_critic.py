"""coderl.models.critic: pooling over real tokens only, per-token probabilities, save/load, training to >90%."""

from __future__ import annotations

import copy
import random

import pytest
import torch

from coderl.models.critic import (
    BINARY_CLASSES,
    OUTCOME_CLASSES,
    Critic,
    critic_inputs,
    encode_examples,
    evaluate_critic,
    outcome_label,
    pooled_logits,
    program_token_probs,
    score_programs,
    tiny_critic,
    token_probs_of,
)
from coderl.train.checkpoint import Checkpoints
from coderl.train.critic import train_critic


def toy_examples(n: int, seed: int) -> list[tuple[str, str, int]]:
    """Separable: programs returning x pass (1), those returning y fail (0); constants and names vary."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(0, 99)
        var = rng.choice(["total", "count", "n", "value"])
        good = rng.random() < 0.5
        prompt = rng.choice(["# Return x.\n", "# Give back the first argument.\n", "# Return x unchanged.\n"])
        ret = "x" if good else "y"
        program = f"def f(x, y):\n    {var} = {k}\n    return {ret}"
        out.append((prompt, program, int(good)))
    return out


def test_outcome_label():
    assert [outcome_label(o) for o in OUTCOME_CLASSES] == [0, 1, 2, 3]
    assert [outcome_label(o, 2) for o in OUTCOME_CLASSES] == [0, 0, 0, 1]
    with pytest.raises(ValueError):
        outcome_label("timeout")
    with pytest.raises(ValueError):
        outcome_label("passed", 3)


def test_pooled_logits_by_hand():
    logits = torch.tensor([[[1.0, 5.0], [3.0, -1.0], [100.0, 100.0]]])  # (1, 3, 2); last token is padding
    mask = torch.tensor([[1, 1, 0]])
    assert pooled_logits(logits, mask, "max").tolist() == [[3.0, 5.0]]
    assert pooled_logits(logits, mask, "mean").tolist() == [[2.0, 2.0]]
    empty = pooled_logits(logits, torch.zeros(1, 3), "max")
    assert empty.tolist() == [[0.0, 0.0]]
    with pytest.raises(ValueError):
        pooled_logits(logits, mask, "sum")  # type: ignore[arg-type]


def test_token_probs_of():
    logits = torch.log(torch.tensor([[[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]]))
    assert torch.allclose(token_probs_of(logits, torch.tensor([2])), torch.tensor([[0.1, 0.8]]))
    assert torch.allclose(token_probs_of(logits, torch.tensor([[0, 2]])), torch.tensor([[0.7, 0.8]]))


def test_critic_inputs_layout_and_truncation():
    ids, attn, pm = critic_inputs([[1, 2, 3], [4]], [[7, 8], [9, 10, 11]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3, 7, 8], [4, 9, 10, 11, 0]]
    assert attn.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    assert pm.tolist() == [[0, 0, 0, 1, 1], [0, 1, 1, 1, 0]]
    ids, _, pm = critic_inputs([[1, 2, 3, 4]], [[7, 8]], pad_id=0, max_length=4)
    assert ids.tolist() == [[3, 4, 7, 8]] and pm.tolist() == [[0, 0, 1, 1]]  # prompt cut from the left
    ids, _, pm = critic_inputs([[1, 2]], [[7, 8, 9, 10]], pad_id=0, max_length=3)
    assert ids.tolist() == [[7, 8, 9]] and pm.tolist() == [[1, 1, 1]]


def test_padding_does_not_change_pooled_result(bpe):
    """CodeRL max-pooled over padding too; here a row's pooled logits are the same alone and in a padded batch."""
    critic = tiny_critic(bpe, n_classes=4, seed=0).eval()
    p_ids, c_ids = encode_examples(bpe, ["# a\n", "# a much longer prompt with many words in it\n"],
                                   ["return x", "def f(x, y):\n    z = x + y\n    return [z, z, z, z]"])
    for mode in ("max", "mean"):
        with torch.no_grad():
            ids, attn, pm = critic_inputs(p_ids, c_ids, bpe.pad_token_id)
            batched = pooled_logits(critic(ids, attn), pm, mode)
            ids1, attn1, pm1 = critic_inputs(p_ids[:1], c_ids[:1], bpe.pad_token_id)
            alone = pooled_logits(critic(ids1, attn1), pm1, mode)
            assert ids.shape[1] > ids1.shape[1]  # row 0 is padded in the batch
            assert torch.allclose(batched[0], alone[0], atol=1e-5)
    # the pad positions carry logits of their own: pooling over them (CodeRL) would depend on the batch
    with torch.no_grad():
        tl = critic(ids, attn)
    pad_rows = tl[0][attn[0] == 0]
    assert pad_rows.shape[0] > 0 and not torch.allclose(pad_rows.mean(0), tl[0][pm[0].bool()].mean(0))


def test_program_token_probs_align_with_completions(bpe):
    critic = tiny_critic(bpe, n_classes=2, seed=0)
    p_ids, c_ids = encode_examples(bpe, ["# a\n", "# bb\n"], ["return x", "return [y, y]"])
    probs, mask = program_token_probs(critic, p_ids, c_ids, [1, 0], bpe.pad_token_id)
    assert probs.shape == mask.shape == (2, max(len(c) for c in c_ids))
    assert mask.sum(1).tolist() == [float(len(c)) for c in c_ids]
    assert torch.all((probs > 0) & (probs <= 1))
    assert torch.all(probs[mask == 0] == 1)
    with torch.no_grad():
        ids, attn, pm = critic_inputs(p_ids[:1], c_ids[:1], bpe.pad_token_id)
        ref = token_probs_of(critic(ids, attn), torch.tensor([1]))[0][pm[0].bool()]
    assert torch.allclose(probs[0, : len(c_ids[0])], ref, atol=1e-6)


def test_training_reaches_high_accuracy(bpe):
    train, test = toy_examples(256, seed=0), toy_examples(128, seed=1)
    critic = tiny_critic(bpe, n_classes=2, n_layer=1, n_embd=32, n_head=2, seed=0)
    assert critic.class_names == list(BINARY_CLASSES)
    before = evaluate_critic(critic, bpe, test)
    stats = train_critic(critic, bpe, train, epochs=4, lr=3e-3, batch_size=32, seed=0, progress=False)
    after = evaluate_critic(critic, bpe, test)
    print(f"toy critic: accuracy {before['accuracy']:.2f} -> {after['accuracy']:.2f} in {stats['seconds']:.1f}s")
    assert after["accuracy"] > 0.9
    assert after["n"] == 128 and sum(map(sum, after["confusion"])) == 128
    assert stats["steps"] == 4 * 8 and stats["epochs"] == 4 and not stats["stopped_early"]
    assert stats["epoch_losses"][-1] < stats["epoch_losses"][0]
    assert not critic.training


def test_training_options_and_reproducibility(bpe):
    data = toy_examples(64, seed=2)
    data = [(p, c, 3 if y else 2) for p, c, y in data]  # passed / failed_test of a 4-class critic
    a, b = (tiny_critic(bpe, n_layer=1, n_embd=32, n_head=2, seed=0, dropout=0.1) for _ in range(2))
    kw = dict(epochs=1, lr=1e-3, batch_size=16, seed=3, progress=False, token_loss_weight=0.5, balance_classes=True,
              pool="mean")
    sa, sb = train_critic(a, bpe, data, **kw), train_critic(b, bpe, data, **kw)
    assert sa["epoch_losses"] == sb["epoch_losses"]
    assert sa["class_counts"]["compile_error"] == 0
    ev = evaluate_critic(a, bpe, data, pool="mean")
    assert len(ev["confusion"]) == 4 and ev["class_names"] == list(OUTCOME_CLASSES)
    stopped = train_critic(a, bpe, data, epochs=50, batch_size=4, time_budget_s=0.0, progress=False)
    assert stopped["stopped_early"] and stopped["steps"] == 1
    with pytest.raises(ValueError, match="labels"):
        train_critic(a, bpe, [("p", "c", 4)], progress=False)
    assert evaluate_critic(a, bpe, [])["n"] == 0


def test_save_and_load(bpe, tmp_path):
    critic = tiny_critic(bpe, n_classes=4, seed=0)
    critic.head[-1].bias.data.add_(0.5)  # something not at initialisation
    critic.save(tmp_path / "critic", tokenizer=bpe)
    loaded = Critic.load(tmp_path / "critic")
    assert loaded.class_names == critic.class_names and not loaded.training
    ids, attn, _ = critic_inputs([[5, 6, 7]], [[8, 9]], bpe.pad_token_id)
    critic.eval()
    with torch.no_grad():
        assert torch.equal(critic(ids, attn), loaded(ids, attn))
    assert (tmp_path / "critic" / "tokenizer.json").is_file()
    from coderl.models.actor import ModelLoadError

    with pytest.raises(ModelLoadError, match="critic.json"):
        Critic.load(tmp_path)
    with pytest.raises(ModelLoadError, match="does not exist"):
        Critic.load(tmp_path / "missing")


def test_critic_from_actor_models(gpt2, t5_pair, bpe, tmp_path):
    """A head on (a copy of) an actor's backbone: the GPT-2 base model, or the encoder of a seq2seq model."""
    t5, tok = t5_pair
    for model, part in ((gpt2, "model"), (t5, "encoder-decoder")):
        critic = Critic.from_model(model, n_classes=2).eval()
        assert critic.backbone_part == part
        ids, attn, pm = critic_inputs([[5, 6, 7], [9]], [[8, 9, 1], [10, 1]], bpe.pad_token_id)
        with torch.no_grad():
            out = critic(ids, attn, pm)
        assert out.shape == (2, ids.shape[1], 2)
        critic.save(tmp_path / part)
        loaded = Critic.load(tmp_path / part)
        with torch.no_grad():
            assert torch.allclose(loaded(ids, attn, pm), out)
        probs = score_programs(loaded, [[5, 6, 7]], [[8, 9, 1]], bpe.pad_token_id)
        assert probs.shape == (1, 2) and torch.allclose(probs.sum(-1), torch.ones(1))
    # the actor is not modified by training its critic copy
    before = gpt2.transformer.wte.weight.clone()
    critic = Critic.from_model(copy.deepcopy(gpt2), n_classes=2)
    train_critic(critic, bpe, toy_examples(8, 0), epochs=1, batch_size=8, progress=False)
    assert torch.equal(gpt2.transformer.wte.weight, before)


def test_seeded_head_is_reproducible_and_leaves_the_global_rng(gpt2):
    heads = []
    for seed in (3, 3, 4):
        state = torch.get_rng_state()
        heads.append(Critic.from_model(gpt2, n_classes=4, seed=seed).head.state_dict())
        assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(heads[0][k], heads[1][k]) for k in heads[0])
    assert not all(torch.equal(heads[0][k], heads[2][k]) for k in heads[0])


def test_from_pretrained_backbone(t5_pair, gpt2, bpe, tmp_path):
    from coderl.models.actor import ModelLoadError, save_checkpoint

    save_checkpoint(gpt2, bpe, tmp_path / "gpt2")
    save_checkpoint(t5_pair[0], t5_pair[1], tmp_path / "t5")
    c1 = Critic.from_pretrained_backbone(tmp_path / "gpt2", n_classes=4)
    c2 = Critic.from_pretrained_backbone(tmp_path / "t5", n_classes=2)
    assert type(c1.backbone).__name__ == "GPT2Model" and c2.backbone_part == "encoder-decoder"
    assert torch.equal(c1.backbone.wte.weight, gpt2.transformer.wte.weight)
    with pytest.raises(ModelLoadError, match="does not exist"):
        Critic.from_pretrained_backbone(tmp_path / "nope")


def test_training_resumed_after_an_epoch_matches_the_uninterrupted_run(bpe, tmp_path):
    """A run stopped at the end of its first epoch resumes from that epoch's checkpoint, into a critic whose weights
    were different, and ends with the uninterrupted run's critic and losses."""
    data = [("# add\n", f"def f(x):\n    return x + {i}\n", i % 4) for i in range(24)]
    kw = dict(epochs=3, lr=3e-3, batch_size=8, seed=5, progress=False)  # dropout on: the torch RNG matters
    full = tiny_critic(bpe, n_layer=1, n_embd=32, n_head=2, seed=0, dropout=0.1)
    s_full = train_critic(full, bpe, data, **kw)

    part = tiny_critic(bpe, n_layer=1, n_embd=32, n_head=2, seed=0, dropout=0.1)
    steps: list[int] = []
    s_part = train_critic(part, bpe, data, checkpoints=Checkpoints(tmp_path, {"run": 1}),
                          on_step=lambda r: steps.append(r["step"]), should_stop=lambda: len(steps) >= 3, **kw)
    assert s_part["interrupted"] and s_part["epochs"] == 1 and s_part["steps"] == 3
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step-000003"
    resumed = tiny_critic(bpe, n_layer=1, n_embd=32, n_head=2, seed=7, dropout=0.1)  # other weights: overwritten
    s_res = train_critic(resumed, bpe, data, checkpoints=Checkpoints(tmp_path, {"run": 1}, resume=True), **kw)
    assert s_res["resumed_after_step"] == 3
    assert s_res["steps"] == s_full["steps"] == 9
    assert s_res["epoch_losses"] == pytest.approx(s_full["epoch_losses"], abs=1e-6)
    for k, v in full.state_dict().items():
        assert torch.allclose(v, resumed.state_dict()[k], atol=1e-6), k
    with pytest.raises(ValueError, match="configuration differs"):  # the checkpoint of another run is refused
        train_critic(resumed, bpe, data, checkpoints=Checkpoints(tmp_path, {"run": 2}, resume=True), **kw)


def test_classification_metrics_by_hand():
    from coderl.models.critic import classification_metrics

    # 4 examples, 3 classes. Predictions (argmax): 0, 0, 2, 1 ; labels 0, 1, 2, 2.
    probs = torch.tensor([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.2, 0.1, 0.7], [0.3, 0.5, 0.2]])
    m = classification_metrics(probs, [0, 1, 2, 2], n_bins=10)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["confusion"] == [[1, 0, 0], [1, 0, 0], [0, 1, 1]]
    assert m["recall"] == pytest.approx([1.0, 0.0, 0.5])
    assert m["precision"] == pytest.approx([0.5, 0.0, 1.0])
    # confidences .9 (right), .6 (wrong), .7 (right), .5 (wrong), each alone in its bin:
    # ECE = (|1 - .9| + |0 - .6| + |1 - .7| + |0 - .5|) / 4 = (.1 + .6 + .3 + .5) / 4 = 0.375
    assert m["ece"] == pytest.approx(0.375)
    # Brier: (.01+.01+0) + (.36+.36+0) + (.04+.01+.09) + (.09+.25+.64) = .02 + .72 + .14 + .98 -> /4 = 0.465
    assert m["brier"] == pytest.approx(0.465)
    nan = classification_metrics(probs[:1], [1])["precision"][2]
    assert nan != nan  # no prediction of class 2: precision undefined, not 0


def test_a_stop_in_the_middle_of_an_epoch_checkpoints_there_and_resumes_to_the_same_critic(bpe, tmp_path):
    """should_stop (Ctrl-C) after step 5, two batches into the second epoch: the checkpoint holds the position in
    the epoch and its partial loss, and the resumed run ends with the uninterrupted run's critic and losses."""
    from coderl.train.checkpoint import load_training_state

    data = [("# add\n", f"def f(x):\n    return x + {i}\n", i % 4) for i in range(24)]
    kw = dict(epochs=3, lr=3e-3, batch_size=8, seed=5, progress=False)
    full = tiny_critic(bpe, n_layer=1, n_embd=32, n_head=2, seed=0, dropout=0.1)
    s_full = train_critic(full, bpe, data, **kw)
    part = tiny_critic(bpe, n_layer=1, n_embd=32, n_head=2, seed=0, dropout=0.1)
    steps: list[int] = []
    s_part = train_critic(part, bpe, data, on_step=lambda r: steps.append(r["step"]),
                          should_stop=lambda: len(steps) >= 5, checkpoints=Checkpoints(tmp_path, {}, keep=5), **kw)
    assert s_part["interrupted"] and s_part["steps"] == 5 and steps == [1, 2, 3, 4, 5]
    saved = sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*"))
    assert saved == ["step-000003", "step-000005"]  # the end of epoch 1, and the stop
    extra = load_training_state(tmp_path / "checkpoints" / "step-000005")["extra"]
    assert (extra["epoch"], extra["batch"]) == (1, 2)
    resumed = tiny_critic(bpe, n_layer=1, n_embd=32, n_head=2, seed=7, dropout=0.1)
    s_res = train_critic(resumed, bpe, data, checkpoints=Checkpoints(tmp_path, {}, resume=True), **kw)
    assert s_res["steps"] == 9 and not s_res["interrupted"]
    assert s_res["epoch_losses"] == pytest.approx(s_full["epoch_losses"], abs=1e-6)
    for k, v in full.state_dict().items():
        assert torch.allclose(v, resumed.state_dict()[k], atol=1e-6), k


def test_gradient_accumulation_gives_the_batch_gradient_and_bf16_trains(bpe):
    import torch

    data = [(p, c, 3 if y else 2) for p, c, y in toy_examples(32, seed=4)]
    a, b, c = (tiny_critic(bpe, n_layer=1, n_embd=32, n_head=2, seed=0) for _ in range(3))
    kw = dict(epochs=1, lr=1e-3, batch_size=16, seed=3, progress=False)
    sa = train_critic(a, bpe, data, **kw)
    sb = train_critic(b, bpe, data, grad_accum=4, **kw)  # 4 micro-batches of 4: the same steps
    assert sb["epoch_losses"][0] == pytest.approx(sa["epoch_losses"][0], rel=1e-5)
    for x, y in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(x, y, atol=1e-6)
    sc = train_critic(c, bpe, data, precision="bf16", **kw)  # autocast on the CPU: close, not equal
    assert sc["epoch_losses"][0] == pytest.approx(sa["epoch_losses"][0], rel=0.05)
    assert any(not torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters(), strict=True))
    with pytest.raises(ValueError, match="grad_accum must be between 1 and batch_size"):
        train_critic(c, bpe, data, grad_accum=17, **kw)
