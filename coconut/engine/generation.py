"""Batched, KV-cached greedy decoding with continuous thoughts.

The prompt (question, `<|start-latent|>`, thoughts, `<|end-latent|>`, padded on either side) is
run through the latent passes; then every row decodes one cached step at a time until it emits
EOS. Decoding is in language mode: `<|latent|>` has no meaning there, so it is never chosen. Rows
that finished keep receiving padding so the batch stays rectangular; their output is padding from
then on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from coconut.config import DEFAULT_MAX_NEW_TOKENS, DecodeConfig
from coconut.engine.alignment import right_align
from coconut.engine.kv_cache import RoomCache
from coconut.engine.soft_inputs import InputMixer


@dataclass
class GenerateOutput:
    sequences: torch.Tensor  # (B, N) generated tokens only (not the prompt), pad_id after EOS
    num_generated: torch.Tensor  # (B,) language tokens generated, EOS included (what `sequences` holds)
    num_thoughts: torch.Tensor  # (B,) continuous thoughts in the prompt
    num_forward_passes: torch.Tensor  # (B,) passes this example needs when run on its own
    soft_inputs: torch.Tensor | None = None  # (B,) tokens fed back as continuous mixtures (soft decoding)

    def language_tokens(self, eos_id: int) -> torch.Tensor:
        """(B,) language tokens without the final EOS, as the release's `generate` returns them."""
        last = self.sequences.gather(1, (self.num_generated - 1).clamp_min(0).unsqueeze(1)).squeeze(1)
        return self.num_generated - ((self.num_generated > 0) & (last == eos_id)).long()

    def paper_token_count(self, eos_id: int) -> torch.Tensor:
        """Tokens as the paper's Table 1 counts them: language tokens without the final EOS, plus thoughts.

        Measured with GPT-2's tokenizer on the gold answers (tools/paper_token_counts.py): ProsQA "### answer"
        is 8.21 tokens without EOS (Table 1 No-CoT: 8.2), a ProntoQA chain of thought 92.56 (CoT: 92.5)."""
        return self.language_tokens(eos_id) + self.num_thoughts


@dataclass
class Rows:
    """Where each row of the batch stands while decoding: one (B,) tensor per fact."""

    thinking: torch.Tensor  # bool: still adding continuous thoughts (learned stop)
    passes: torch.Tensor  # decoder calls this row would need on its own
    learned: torch.Tensor = field(init=False)  # thoughts added while decoding
    finished: torch.Tensor = field(init=False)  # bool: emitted EOS or reached max_new_tokens
    generated: torch.Tensor = field(init=False)  # language tokens emitted
    soft_inputs: torch.Tensor = field(init=False)  # tokens read back as mixtures
    tokens: list = field(default_factory=list)  # (B,) token chosen at each column
    spoken: list = field(default_factory=list)  # (B,) bool: the column was a language token for the row

    def __post_init__(self):
        zeros = torch.zeros_like(self.passes)
        self.learned, self.generated, self.soft_inputs = zeros.clone(), zeros.clone(), zeros.clone()
        self.finished = torch.zeros_like(self.thinking)

    def sequences(self, pad_id: int) -> torch.Tensor:
        """Each row's language tokens moved to the front (columns where it thought are dropped)."""
        tokens, spoken = torch.stack(self.tokens, dim=1), torch.stack(self.spoken, dim=1)
        if bool(spoken.all()):  # no thinking columns; ranks kept in step may have run past their own end
            return tokens[:, : int(self.generated.max())]
        out = torch.full((tokens.shape[0], int(self.generated.max())), pad_id, dtype=tokens.dtype, device=tokens.device)
        for row in range(tokens.shape[0]):
            kept = tokens[row][spoken[row]]
            out[row, : kept.numel()] = kept
        return out


@torch.no_grad()
def generate(engine, input_ids, attention_mask=None, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
             decode: DecodeConfig | None = None, learned_stop: bool = False, max_thoughts: int = 0, stop_threshold: float = 0.5,
             leave_ids=(), answer_ids=()) -> GenerateOutput:
    """Greedy decoding of a batch of prompts with `engine` (a `LatentReasoner`).

    decode: what each row reads back after a token (greedy: the token; see `coconut.engine.soft_inputs`).
    learned_stop: prompts end with `<|start-latent|>`; each row keeps adding continuous thoughts
        until the engine's stop head says stop (probability >= stop_threshold) or it has
        `max_thoughts`, then reads `<|end-latent|>` and decodes language. Rows think and speak
        side by side in one batch: each column is a thought for some rows, a token for others.
    leave_ids: tokens that end a row's continuous decoding phase (the answer marker, EOS).
    answer_ids: the answer marker's tokens, which a Soft Thinking cold stop writes (and feeds back) in place of
        the model's next tokens so that it answers, as the release writes its end-of-thinking token.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    if not bool(attention_mask.any(dim=1).all()):
        raise ValueError("generate: every prompt needs at least one attended token")
    # The next token of every row must come from the same (last) column.
    input_ids, attention_mask = right_align(input_ids, attention_mask, engine.pad_id)
    if learned_stop:
        _check_learned_stop(engine, input_ids, max_thoughts)
    spare = max_new_tokens + (max_thoughts + 1 if learned_stop else 0)
    cache = RoomCache(engine.model.config, room=input_ids.shape[1] + spare)
    prompt = engine.run_passes(input_ids, attention_mask, cache=cache)
    layout = prompt.layout
    batch, device = input_ids.shape[0], input_ids.device
    # Passes a lone example needs for its prompt (its own thoughts, not the batch's most).
    rows = Rows(thinking=torch.full((batch,), learned_stop, dtype=torch.bool, device=device),
                passes=engine.passes_needed(layout.num_thoughts))

    mixer = InputMixer(decode or DecodeConfig(), engine, batch, device, leave_ids, answer_ids)
    hidden = prompt.hidden[:, -1]  # (B, d)
    mask = layout.attention_mask
    position = layout.position_ids[:, -1:]  # (B, 1)
    end = torch.full((batch,), engine.end_id, dtype=torch.long, device=device)
    while True:
        logits = engine.lm_head(hidden)  # (B, V)
        logits[:, engine.latent_id] = float("-inf")
        speaking = ~rows.thinking & ~rows.finished
        token = torch.where(speaking, logits.argmax(dim=-1), torch.full_like(rows.generated, engine.pad_id))
        token, embeds = mixer(logits, token, speaking)  # a cold stop may replace the token by the answer marker
        if learned_stop and bool(rows.thinking.any()):  # only a learned stop thinks while decoding (no sync else)
            stop = (engine.stop_head.probability(hidden) >= stop_threshold) | (rows.learned >= max_thoughts)
            more, closing = rows.thinking & ~stop, rows.thinking & stop
            embeds = torch.where(more.unsqueeze(-1), engine.thought_embedding(hidden).to(embeds.dtype), embeds)
            embeds = torch.where(closing.unsqueeze(-1), engine.embed(end), embeds)
            rows.learned += more.long()
            rows.thinking &= ~closing
        rows.tokens.append(token)
        rows.spoken.append(speaking)
        rows.generated += speaking.long()
        rows.finished |= speaking & ((token == engine.eos_id) | (rows.generated >= max_new_tokens))
        done = bool(rows.finished.all())
        if engine.sync.all_done(done) if engine.sync is not None else done:  # with a RankSync: all ranks done
            break
        rows.soft_inputs += (mixer.mixing & ~rows.finished).long()
        rows.passes += (~rows.finished).long()
        mask = torch.cat([mask, mask.new_ones(batch, 1)], dim=1)
        position = position + 1
        hidden = engine.cached_pass(embeds.unsqueeze(1), mask, position, cache)[:, -1]
    return GenerateOutput(
        sequences=rows.sequences(engine.pad_id),
        num_generated=rows.generated,
        num_thoughts=layout.num_thoughts + rows.learned,
        num_forward_passes=rows.passes,
        soft_inputs=rows.soft_inputs,
    )


def _check_learned_stop(engine, input_ids: torch.Tensor, max_thoughts: int) -> None:
    if engine.stop_head is None:
        raise ValueError("learned_stop needs an engine with a stop classifier (latent.stop_classifier=true)")
    if max_thoughts < 0:
        raise ValueError(f"max_thoughts must be >= 0, got {max_thoughts}")
    ends = input_ids[:, -1] != engine.start_id
    if bool(ends.any()):
        row = int(ends.nonzero()[0])
        raise ValueError(f"learned_stop: row {row} does not end with <|start-latent|>; the thoughts are decided "
                         "while decoding, so prompts stop right after the start marker")
