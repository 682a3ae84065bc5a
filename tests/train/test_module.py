"""CoconutModule without a Trainer run: the training loss is the engine's (plus the weighted stop loss), a
non-finite loss stops with its step and stage, and score_batch adds the right metrics for a hand-made batch."""

import pytest
import torch
from torch.testing import assert_close

from coconut.data.collate import EvalCollator
from coconut.engine.generation import GenerateOutput
from coconut.train.metrics import EvalMetrics
from coconut.train.module import NonFiniteLossError


def record_logs(module) -> dict:
    """What the module logs, by name (Lightning's logging needs a real Trainer)."""
    logged = {}
    module.log = lambda name, value, **kwargs: logged.__setitem__(name, value)
    return logged


def train_batch(datamodule):
    return next(iter(datamodule.train_dataloader()))


def test_training_step_loss_is_the_engines_loss(tiny_system, fake_trainer):
    cfg, module, datamodule, _ = tiny_system()
    module.trainer = fake_trainer(datamodule, epoch=1)
    batch = train_batch(datamodule)
    assert batch["num_thoughts"].tolist() == [1] * cfg.data.batch_size, "stage 1: one thought per sample"
    logged = record_logs(module)
    module.eval()  # no dropout: the two forwards see the same network
    loss = module.training_step(batch, 0)
    want = module.engine(batch["input_ids"], batch["attention_mask"], batch["labels"]).loss
    assert_close(loss, want)
    assert_close(logged["train/loss"], want)
    assert "train/stop_loss" not in logged, "no stop head, no stop loss"
    assert loss.requires_grad, "the loss trains the model"


def test_the_stop_loss_is_added_with_its_weight(tiny_system, fake_trainer):
    cfg, module, datamodule, _ = tiny_system("latent.stop_classifier=true", "latent.stop_loss_weight=0.25")
    assert module.stop_loss_weight == 0.25 and module.engine.stop_head is not None
    module.trainer = fake_trainer(datamodule, epoch=2)
    batch = train_batch(datamodule)
    logged = record_logs(module)
    module.eval()
    loss = module.training_step(batch, 0)
    out = module.engine(batch["input_ids"], batch["attention_mask"], batch["labels"])
    stop = module.engine.stop_loss(out.hidden, batch["input_ids"])
    assert stop is not None and float(stop) > 0
    assert_close(loss, out.loss + 0.25 * stop)
    assert_close(logged["train/loss"], out.loss), "train/loss is the language-model loss alone"
    assert_close(logged["train/stop_loss"], stop)


def test_a_nan_loss_stops_with_the_step_epoch_and_stage(tiny_system, fake_trainer):
    _, module, datamodule, _ = tiny_system()
    module.trainer = fake_trainer(datamodule, epoch=2, global_step=9)
    batch = train_batch(datamodule)
    with torch.no_grad():
        next(module.engine.parameters()).fill_(float("nan"))
    record_logs(module)
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at global step 9 \(epoch 2, curriculum stage 2\)"):
        module.training_step(batch, 0)


def test_the_stage_is_the_data_modules_or_else_the_schedules(tiny_system, fake_trainer):
    cfg, module, datamodule, _ = tiny_system()
    module.trainer = fake_trainer(datamodule, epoch=3)
    datamodule.freeze_stage(1)
    assert module.stage == 1, "the data module owns the stage"
    module.trainer = fake_trainer(None, epoch=3)
    assert module.stage == cfg.trainer.schedule.stage(3) == 3
    module.trainer = None
    assert module.stage == 0, "outside a Trainer: the schedule's stage of epoch 0"


def hand_made_batch(datamodule, tokenizer):
    """Three validation questions with different answers, and generations: the target, another answer, nothing."""
    items, seen = [], set()
    for sample, answer in datamodule.eval_items("val"):
        if answer not in seen:
            items.append((sample, answer))
            seen.add(answer)
        if len(items) == 3:
            break
    batch = EvalCollator(datamodule.collate)(items)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    right = items[0][0].target  # the remaining steps, the answer and EOS: correct, and the CoT matches
    wrong = tokenizer(f"= {items[0][1]}", add_special_tokens=False)["input_ids"] + [eos]  # another question's answer
    silent = [eos]  # no answer marker: wrong
    rows = [right, wrong, silent]
    width = max(map(len, rows))
    gen = GenerateOutput(sequences=torch.tensor([r + [pad] * (width - len(r)) for r in rows]),
                         num_generated=torch.tensor([len(r) for r in rows]), num_thoughts=torch.tensor([2, 2, 2]),
                         num_forward_passes=torch.tensor([len(r) + 3 for r in rows]))
    return batch, gen, items


def test_score_batch_adds_accuracy_tokens_and_thoughts_of_a_hand_made_batch(tiny_system, fake_trainer, monkeypatch):
    _, module, datamodule, tokenizer = tiny_system()
    module.trainer = fake_trainer(datamodule, epoch=2)
    batch, gen, items = hand_made_batch(datamodule, tokenizer)
    asked = []
    monkeypatch.setattr(module, "generate", lambda ids, mask, settings=None: asked.append((ids, mask)) or gen)
    metrics = EvalMetrics()
    module.samples = []
    module.score_batch(batch, metrics, keep_samples=True)
    assert torch.equal(asked[0][0], batch["prompt_input_ids"]) and torch.equal(asked[0][1], batch["prompt_attention_mask"])
    n = gen.num_generated.float()  # every row ends with EOS, which the paper's count leaves out
    want = {"acc": 1 / 3, "cot_match": 1 / 3, "language_tokens": float(n.mean()) - 1, "thoughts": 2.0,
            "language_tokens_with_eos": float(n.mean()), "tokens": float(n.mean()) - 1 + 2.0,
            "passes": float(n.mean()) + 3.0}
    assert metrics.values() == pytest.approx(want, abs=1e-5)
    assert [s["correct"] for s in module.samples] == [True, False, False]
    assert [s["answer"] for s in module.samples] == [answer for _, answer in items]
    assert module.samples[0]["generated"] == tokenizer.decode(items[0][0].target, skip_special_tokens=True)
    # A second batch adds to the same means: the metrics average over questions, not batches.
    module.score_batch(batch, metrics)
    assert metrics.values() == pytest.approx(want, abs=1e-5)
    assert len(module.samples) == 3, "samples are kept only when asked"


def test_a_question_of_weight_zero_counts_in_no_metric(tiny_system, fake_trainer, monkeypatch):
    # Under DDP the questions repeated to even out the ranks weigh 0: the hand-made batch's third question (no
    # answer, the shortest generation) must change neither the scores nor the validation loss.
    _, module, datamodule, tokenizer = tiny_system()
    module.trainer = fake_trainer(datamodule, epoch=2)
    batch, gen, _ = hand_made_batch(datamodule, tokenizer)
    monkeypatch.setattr(module, "generate", lambda ids, mask, settings=None: gen)
    n = gen.num_generated[:2].float()
    want = {"acc": 1 / 2, "cot_match": 1 / 2, "language_tokens": float(n.mean()) - 1, "thoughts": 2.0,
            "language_tokens_with_eos": float(n.mean()), "tokens": float(n.mean()) - 1 + 2.0,
            "passes": float(n.mean()) + 3.0}
    metrics = EvalMetrics()
    module.samples = []
    module.score_batch({**batch, "weights": torch.tensor([1.0, 1.0, 0.0])}, metrics, keep_samples=True)
    assert metrics.values() == pytest.approx(want, abs=1e-5)
    assert len(module.samples) == 2, "a repeated question is not shown as a sample"
    with torch.no_grad():  # the loss over the two real rows only (the third's labels masked)
        monkeypatch.setattr(module, "score_batch", lambda *args, **kwargs: None)
        module.validation_step({**batch, "weights": torch.tensor([1.0, 1.0, 0.0])}, 0)
        labels = batch["labels"].clone()
        labels[2] = -100
        want_loss = module.engine(batch["input_ids"], batch["attention_mask"], labels).loss
        assert not torch.allclose(want_loss, module.engine(batch["input_ids"], batch["attention_mask"],
                                                           batch["labels"]).loss), "the third row counts otherwise"
        module.validation_step({**batch, "weights": torch.tensor([0.0, 0.0, 0.0])}, 1)  # adds nothing
    assert_close(module.val_loss.compute(), want_loss)


def test_score_batch_on_real_generations_counts_the_stages_thoughts(tiny_system, fake_trainer):
    """Untrained weights: whatever is generated, the thoughts are the stage's k * c and the counts add up."""
    cfg, module, datamodule, _ = tiny_system("method.thoughts_per_step=2")
    module.trainer = fake_trainer(datamodule, epoch=2)
    module.eval()
    metrics = EvalMetrics()
    with torch.no_grad():
        for batch in datamodule.val_dataloader():
            module.score_batch(batch, metrics)
    v = metrics.values()
    assert v["thoughts"] == 2 * 2, "stage 2, two thoughts per step"
    assert v["tokens"] == pytest.approx(v["language_tokens"] + v["thoughts"], abs=1e-4)
    # A prefix pass, one per thought but the last, one for the last thought and the rest of the prompt (it gives
    # the first token), then one per further token: the release's count.
    assert v["passes"] == pytest.approx(v["language_tokens_with_eos"] + v["thoughts"], abs=1e-4)
    assert 0 <= v["language_tokens_with_eos"] - v["language_tokens"] <= 1
    assert 1 <= v["language_tokens"] <= cfg.eval.max_new_tokens
    assert v["acc"] * 24 == pytest.approx(round(v["acc"] * 24), abs=1e-4), "a count over the 24 questions"


def test_checkpoints_carry_the_stage_they_were_trained_at(tiny_system, fake_trainer):
    """The stage saved by the module wins over the epoch's (a frozen or resumed stage need not be the epoch's)."""
    from coconut.train.checkpoints import STAGE_KEY, checkpoint_stage

    cfg, module, datamodule, _ = tiny_system()
    module.trainer = fake_trainer(datamodule, epoch=0)
    datamodule.freeze_stage(2)
    saved = {"epoch": 0}
    module.on_save_checkpoint(saved)
    assert saved[STAGE_KEY] == 2
    assert checkpoint_stage(saved, cfg.trainer.schedule) == 2, "the saved stage, not epoch 0's stage 0"
    assert checkpoint_stage({"epoch": 3}, cfg.trainer.schedule) == cfg.trainer.schedule.stage(3), \
        "a checkpoint without it falls back to its epoch"
