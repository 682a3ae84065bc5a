"""Step supervision's auxiliary decoder (SIM-CoT): it reads a continuous thought and writes the step it replaced.

A second causal LM (both releases: a fresh copy of the pretrained base model, not resized for the markers) is fed,
for each supervised thought, the thought's input embedding (c of them for COCONUT's c thoughts per step; the
projected state for CODI) as a prefix, then the step's tokens embedded by the *base* model's input embedding, and
trained with teacher forcing to write the step and EOS. Only training uses it: it is no part of the engine, so the
exported model and generation never see it. The plan of which thought reads which step is the method's
(coconut.methods.step_supervision); the sample fields it yields are collated as `step_sources` (B, G, c): the
positions whose last hidden state becomes each thought's input (-1: none), and `step_targets` (B, G, L): the step
ids and EOS, -100 after.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from coconut.engine.lockstep import idle_passes
from coconut.markers import IGNORE_INDEX
from coconut.methods.step_supervision import STEP_LOSS_PER


class StepDecoder(nn.Module):
    """The auxiliary decoder and its loss. `per`: "sequence" (each thought's token CE summed and divided by the rows
    with a step) or "token" (the mean over its step tokens); `first_position`: the decoder's first position id;
    `dropout`: whether it trains with its dropout on."""

    def __init__(self, decoder: nn.Module, per: str = "sequence", first_position: int = 1, dropout: bool = False):
        super().__init__()
        if per not in STEP_LOSS_PER:
            raise ValueError(f"per must be one of {', '.join(STEP_LOSS_PER)}, got {per!r}")
        self.decoder, self.per, self.first_position, self.dropout = decoder, per, first_position, dropout

    def train(self, mode: bool = True):
        # With dropout off (the release's COCONUT) the decoder stays in evaluation mode while the model trains.
        return super().train(mode and self.dropout)

    def forward(self, engine, hidden: torch.Tensor, sources: torch.Tensor, targets: torch.Tensor):
        """(the step loss averaged over the thoughts that have a step, the per-thought losses (G,), zero where
        none) from the engine's last hidden states `hidden` (B, T, d), in the batch's columns.

        One decoder call per thought that has a step. Under FSDP (the engine has a `sync`) every rank makes as
        many as the busiest: a rank whose batch holds fewer thoughts (shorter chains, stage 0, a sample at
        another stage) adds idle calls, else its wrapped layers would wait for gathers the others never make."""
        losses = torch.zeros(sources.shape[1], device=hidden.device)
        supervised = (targets != IGNORE_INDEX).any(dim=2)  # (B, G): rows with thought g's step
        groups = [g for g in range(sources.shape[1]) if supervised[:, g].any()]
        idle = self._idle_calls(engine, hidden, len(groups))
        if groups:
            vectors = thought_vectors(engine, hidden, sources)  # (B, G, c, d)
            for g in groups:
                rows = supervised[:, g]
                losses[g] = self.thought_loss(engine, vectors[rows, g], targets[rows, g])
        loss = losses.sum() / supervised.any(dim=0).sum().clamp(min=1)
        return (loss if idle is None else loss + idle), losses

    def _idle_calls(self, engine, hidden: torch.Tensor, calls: int) -> torch.Tensor | None:
        """A zero tied to the idle decoder calls this rank needs to match the busiest rank (None without a sync)."""
        sync = getattr(engine, "sync", None)
        if sync is None:
            return None
        extra = sync.most(calls) - calls
        return idle_passes(self.decoder.base_model, extra, hidden.new_zeros(1, 1, hidden.shape[-1])) if extra else None

    def thought_loss(self, engine, vectors: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """The loss of one thought over the rows that have its step: `vectors` (R, c, d), `step` (R, L)."""
        rows, c = vectors.shape[:2]
        # Past a row's EOS the ids are padding the causal decoder reads after every target: any real id serves.
        tokens = engine.embed(step.clamp(min=0)).to(vectors.dtype)
        inputs = torch.cat([vectors, tokens], dim=1)
        positions = torch.arange(self.first_position, self.first_position + inputs.shape[1], device=inputs.device)
        logits = self.decoder(inputs_embeds=inputs, position_ids=positions.expand(rows, -1)).logits
        labels = torch.cat([step.new_full((rows, c), IGNORE_INDEX), step], dim=1)
        # logits[:, i] predicts labels[:, i + 1]: the last thought slot predicts the step's first token.
        ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1),
                             ignore_index=IGNORE_INDEX, reduction="sum")
        count = (labels[:, 1:] != IGNORE_INDEX).sum() if self.per == "token" else rows
        return ce / count


def thought_vectors(engine, hidden: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """(B, G, c, d): the input embedding the engine makes of the last hidden state at each source position (the
    fed-back thought), zeros where the source is -1."""
    b, g, c = sources.shape
    index = sources.clamp(min=0).reshape(b, g * c, 1).expand(-1, -1, hidden.shape[-1])
    picked = engine.thought_embedding(hidden.gather(1, index)).reshape(b, g, c, -1)
    return picked * (sources >= 0).unsqueeze(-1).to(picked.dtype)


@torch.no_grad()
def read_steps(step_decoder: StepDecoder, engine, vectors: torch.Tensor, eos_id: int, max_tokens: int = 32
               ) -> list[list[int]]:
    """The auxiliary decoder's greedy reading of thoughts: for each group of thought vectors (G, c, d), the ids it
    writes after them, up to EOS or `max_tokens` (what the thought would say as the step it replaced)."""
    decoder = step_decoder.decoder
    out = []
    for group in vectors:
        inputs, ids = group.unsqueeze(0), []
        for _ in range(max_tokens):
            start = step_decoder.first_position
            positions = torch.arange(start, start + inputs.shape[1], device=inputs.device).unsqueeze(0)
            token = int(decoder(inputs_embeds=inputs, position_ids=positions).logits[0, -1].argmax())
            if token == eos_id:
                break
            ids.append(token)
            nxt = engine.embed(torch.tensor([[token]], device=inputs.device)).to(inputs.dtype)
            inputs = torch.cat([inputs, nxt], dim=1)
        out.append(ids)
    return out


SETTINGS_FILE = "step_decoder.json"


def save_step_decoder(step_decoder: StepDecoder, folder) -> None:
    """The decoder (a Hugging Face folder) and its settings, for reading thoughts after training."""
    import json
    from pathlib import Path

    folder = Path(folder)
    step_decoder.decoder.save_pretrained(folder)
    settings = {"per": step_decoder.per, "first_position": step_decoder.first_position, "dropout": step_decoder.dropout}
    (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")


def load_step_decoder(folder) -> StepDecoder:
    import json
    from pathlib import Path

    from transformers import AutoModelForCausalLM

    settings = json.loads((Path(folder) / SETTINGS_FILE).read_text())
    return StepDecoder(AutoModelForCausalLM.from_pretrained(folder), **settings).eval()
