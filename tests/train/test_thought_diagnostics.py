"""The thought diagnostics callback: what it logs on the first validation batch, and when it logs nothing."""

import re
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.plugins.precision import Precision

from coconut.analysis.thought_stats import batch_thoughts, thought_stats
from coconut.train.thought_diagnostics import READOUT_TAG, ThoughtDiagnostics


class Recorder:
    """The module's `log` and a logger's `add_text`, written down."""

    def __init__(self):
        self.logged, self.texts = {}, []

    def log(self, name, value, **kwargs):
        assert kwargs.get("rank_zero_only"), "only rank 0 measures, so the other ranks must not be waited for"
        self.logged[name] = value

    def add_text(self, tag, text, global_step):
        self.texts.append((tag, text, global_step))


def run_callback(tiny_system, fake_trainer, stage, weights=None, strategy=None, global_zero=True):
    cfg, module, datamodule, tokenizer = tiny_system()
    datamodule.freeze_stage(stage)
    batch = next(iter(datamodule.val_dataloader()))
    if weights is not None:
        batch["weights"] = weights
    rec = Recorder()
    pl_module = SimpleNamespace(engine=module.engine.eval(), tokenizer=tokenizer, log=rec.log)
    trainer = fake_trainer(datamodule, is_global_zero=global_zero, strategy=strategy or object(), global_step=7,
                           loggers=[SimpleNamespace(experiment=rec)], precision_plugin=Precision())
    with torch.no_grad():
        ThoughtDiagnostics(questions=8, readouts=2, top=3).on_validation_batch_end(trainer, pl_module, None, batch, 0)
    return module.engine, batch, rec


def test_stage_two_logs_the_stats_of_the_first_questions_and_a_readout_table(tiny_system, fake_trainer):
    engine, batch, rec = run_callback(tiny_system, fake_trainer, stage=2)
    ids, mask = batch["prompt_input_ids"][:8], batch["prompt_attention_mask"][:8]
    with torch.no_grad():
        got = batch_thoughts(engine, ids, mask)
        want = thought_stats(got.fed, got.present, got.token_norm)
    assert got.count == 2 and {"thoughts/norm_pos1", "thoughts/norm_pos2", "thoughts/cos_within",
                               "thoughts/cos_across", "thoughts/norm_ratio", "thoughts/token_embedding_norm"} <= set(want)
    assert rec.logged == pytest.approx(want)
    [(tag, table, step)] = rec.texts
    lines = table.splitlines()
    assert tag == READOUT_TAG and step == 7 and lines[0] == "| question | thought | top tokens (probability) |"
    assert len(lines) == 2 + 2 * 2, "two questions, two thoughts each"
    for line in lines[2:]:  # the questions and the tokens hold `|`: escaped, so that each row keeps three cells
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert len(cells) == 3 and cells[1] in ("1", "2") and cells[2].count(" \\| ") == 2, line


def test_questions_repeated_for_the_ranks_are_left_out(tiny_system, fake_trainer):
    weights = torch.ones(12)
    weights[1] = 0.0  # the second question: a repeat, it must not pair with anything
    engine, batch, rec = run_callback(tiny_system, fake_trainer, stage=1, weights=weights)
    keep = torch.tensor([i for i in range(12) if i != 1][:8])
    with torch.no_grad():
        got = batch_thoughts(engine, batch["prompt_input_ids"][keep], batch["prompt_attention_mask"][keep])
    assert rec.logged == pytest.approx(thought_stats(got.fed, got.present, got.token_norm))
    assert "thoughts/cos_within" not in rec.logged, "one thought per question at stage 1: no pair within"


@pytest.mark.parametrize("case", ["stage 0", "not rank 0", "fsdp"])
def test_nothing_is_measured_without_thoughts_off_rank_zero_or_under_fsdp(tiny_system, fake_trainer, case):
    from lightning.pytorch.strategies import FSDPStrategy

    kwargs = {"stage 0": {"stage": 0}, "not rank 0": {"stage": 2, "global_zero": False},
              "fsdp": {"stage": 2, "strategy": FSDPStrategy.__new__(FSDPStrategy)}}[case]
    _, _, rec = run_callback(tiny_system, fake_trainer, **kwargs)
    assert rec.logged == {} and rec.texts == []
