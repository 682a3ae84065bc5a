"""At each validation: the geometry of the continuous thoughts and what the LM head reads from them.

On the first validation batch's prompts (at most `questions` of them) the engine computes the stage's thoughts
once more, and `coconut.analysis.thought_stats` turns them into the `thoughts/*` scalars (norms per position
against the token embeddings, cosine similarity within and across questions), logged through the module so
they reach every logger and `trainer.callback_metrics`; a Markdown table of the LM head's top tokens per thought
for a few questions goes to TensorBoard as `thoughts/readout`, and, under step supervision, what the auxiliary
decoder writes from each thought (the step it stands for) as `thoughts/decoder_readout`. Nothing is logged at stage 0 or for a method
whose prompts hold no `<|latent|>` (CoT, pause tokens): there is no continuous thought to measure.

The prompts are the stage's fixed `k x c` thoughts, also under `eval.thoughts=learned` (whose generation decides
the count itself). Distributed: rank 0 measures its own first batch alone, outside the ranks' lock-step (one
more forward of a model every rank holds whole). Under FSDP nothing is measured: the parameters are sharded
outside the module's own steps, and a decoder call by one rank alone would wait for the others forever.
"""

from __future__ import annotations

import lightning as L

from coconut.analysis.thought_stats import batch_thoughts, read_batch, thought_stats
from coconut.train.accuracy_log import markdown_cell

READOUT_TAG = "thoughts/readout"
DECODER_TAG = "thoughts/decoder_readout"


def readout_table(readings: list[tuple[str, list]]) -> str:
    """One Markdown row per thought: the question (on its first thought's row), the thought's number, its top tokens."""
    from coconut.analysis.thoughts import reading_cells

    lines = ["| question | thought | top tokens (probability) |", "|---|---|---|"]
    for question, thoughts in readings:
        for j, reading in enumerate(thoughts, 1):
            cells = [question if j == 1 else "", str(j), " | ".join(reading_cells(reading))]
            lines.append("| " + " | ".join(markdown_cell(c) for c in cells) + " |")
    return "\n".join(lines)


class ThoughtDiagnostics(L.Callback):
    """Logs `thoughts/*` after the first validation batch (see the module doc)."""

    def __init__(self, questions: int = 16, readouts: int = 3, top: int = 5):
        self.questions, self.readouts, self.top = questions, readouts, top

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        from lightning.pytorch.strategies import FSDPStrategy

        if batch_idx != 0 or dataloader_idx != 0 or trainer.sanity_checking or not trainer.is_global_zero:
            return
        if isinstance(trainer.strategy, FSDPStrategy):
            return
        engine = pl_module.engine
        ids, mask = batch["prompt_input_ids"], batch["prompt_attention_mask"]
        if "weights" in batch:  # questions repeated to even out the ranks would pair with themselves (cosine 1)
            real = batch["weights"].to(ids.device) > 0
            ids, mask = ids[real], mask[real]
        ids, mask = ids[: self.questions], mask[: self.questions]
        if not bool((ids == engine.latent_id).any()):
            return
        sync, engine.sync = engine.sync, None  # rank 0 alone: no lock-step with ranks that are not calling
        try:  # in the precision validation runs in (its autocast under *-mixed), like the validation step
            with trainer.precision_plugin.val_step_context():
                thoughts = batch_thoughts(engine, ids, mask)
        finally:
            engine.sync = sync
        for name, value in thought_stats(thoughts.fed, thoughts.present, thoughts.token_norm).items():
            pl_module.log(name, value, rank_zero_only=True, batch_size=1)
        if self.readouts > 0:
            table = readout_table(read_batch(engine, pl_module.tokenizer, thoughts, ids, mask, self.readouts, self.top))
            tables = {READOUT_TAG: table}
            if getattr(pl_module, "step_decoder", None) is not None:
                tables[DECODER_TAG] = decoder_table(pl_module, thoughts, ids, mask, self.readouts)
            for logger in trainer.loggers:
                if hasattr(logger.experiment, "add_text"):
                    for tag, text in tables.items():
                        logger.experiment.add_text(tag, text, global_step=trainer.global_step)


def decoder_table(pl_module, thoughts, ids, mask, questions: int) -> str:
    """One Markdown row per supervised thought of the first `questions` rows: the thoughts it groups and the step
    the auxiliary decoder writes from them (greedy)."""
    from coconut.analysis.thought_stats import question_tokens
    from coconut.engine.step_decoder import read_steps
    from coconut.methods import method

    engine, tokenizer, cfg = pl_module.engine, pl_module.tokenizer, pl_module.method
    lines = ["| question | thoughts | decoder writes |", "|---|---|---|"]
    asked = question_tokens(engine, ids, mask)
    for row in [r for r in range(ids.shape[0]) if bool(thoughts.present[r].any())][:questions]:
        fed = thoughts.fed[row][thoughts.present[row]]
        groups, _ = method(cfg.name).step_plan(cfg, [], None, 0, len(fed), [])
        groups = [g for g in groups if max(g) < len(fed)]  # the state after the last thought is not fed
        steps = read_steps(pl_module.step_decoder, engine, fed[[j for g in groups for j in g]].reshape(
            len(groups), -1, fed.shape[-1]), tokenizer.eos_token_id) if groups else []
        question = tokenizer.decode(ids[row][asked[row]].tolist(), skip_special_tokens=True).strip()
        for k, (group, step) in enumerate(zip(groups, steps)):
            cells = [question if k == 0 else "", "+".join(str(j + 1) for j in group), tokenizer.decode(step)]
            lines.append("| " + " | ".join(markdown_cell(c) for c in cells) + " |")
    return "\n".join(lines)
