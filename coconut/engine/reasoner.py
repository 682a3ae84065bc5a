"""The latent engine: a causal LM whose continuous thoughts feed back its last hidden state.

At every `<|latent|>` position the input embedding is replaced by the last hidden state of the
position before it (optionally through a learned projection). Thoughts depend on each other, so
they are computed one column at a time, reusing the KV cache:

    prefix pass  (columns [0, P))              -> hidden state of the <|start-latent|> column
    thought pass (column P + j), j < n_max     -> one position each, cached
    final pass   (columns [P + n_max, W))      -> the rest, cached

Everything stays differentiable, so training back-propagates through the chain of thoughts.
The batch is first moved by `align_thoughts` so that all thoughts share columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DynamicCache

from coconut.engine.alignment import LatentInputError, ThoughtLayout, align_thoughts, positions_from_mask

IGNORE_INDEX = -100


@dataclass
class LatentOutput:
    loss: torch.Tensor | None  # mean next-token cross entropy over labelled positions
    logits: torch.Tensor  # (B, T, V), in the caller's layout
    num_thoughts: torch.Tensor  # (B,)
    hidden: torch.Tensor | None = None  # (B, T, d) last hidden states, in the caller's layout


@dataclass
class PrefillResult:
    hidden: torch.Tensor  # (B, W, d): last hidden state of every aligned column
    cache: DynamicCache
    layout: ThoughtLayout
    passes: int  # forward passes run for the whole batch
    idle: torch.Tensor | None = None  # zero, tied to the idle passes that kept ranks in step (add it to the loss)


class LatentReasoner(nn.Module):
    """Wraps any Hugging Face causal LM to run COCONUT's continuous thoughts.

    Args:
        model: a `*ForCausalLM` model (its decoder, input embeddings and LM head are used).
        latent_id, start_id, end_id: token ids of `<|latent|>`, `<|start-latent|>`, `<|end-latent|>`.
        eos_id: end-of-sequence id; generation stops a row when it emits it.
        pad_id: id written into padding and holes (defaults to `eos_id`); never attended.
        latent_projection: learn a linear map (initialised to the identity) from the last hidden
            state to the next input embedding, instead of feeding the hidden state as it is.
        thought_scale: multiply the fed-back state by this factor. The last hidden state comes out
            of the final norm (norm ~ sqrt(width)), while token embeddings of a model trained from
            scratch are far smaller; scaling the thought to the embeddings' size keeps it from
            swamping the residual stream (see `thought_scale_for`).
        stop_classifier: add a binary classifier on the continuous thoughts that decides when to
            emit `<|end-latent|>` (see `stop_loss`, and `generate(..., learned_stop=True)`).
        jacobi_iterations: compute the thoughts in parallel (PCCoT): start every thought from its
            `<|latent|>` embedding, run the whole sequence, feed each thought the hidden state just
            before it, and repeat. After n iterations the first n thoughts are exact, so with at least
            as many iterations as thoughts the result equals the sequential engine; fewer iterations
            trade exactness for fewer, wider passes. None: one cached pass per thought.
    """

    def __init__(
        self,
        model: nn.Module,
        latent_id: int,
        start_id: int,
        end_id: int,
        eos_id: int,
        pad_id: int | None = None,
        latent_projection: bool = False,
        thought_scale: float = 1.0,
        stop_classifier: bool = False,
        jacobi_iterations: int | None = None,
    ):
        super().__init__()
        ids = {"latent_id": latent_id, "start_id": start_id, "end_id": end_id, "eos_id": eos_id}
        for name, value in ids.items():
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"LatentReasoner: {name} must be a non-negative token id, got {value!r}")
        if len({latent_id, start_id, end_id}) != 3:
            raise ValueError("LatentReasoner: latent_id, start_id and end_id must be three different tokens")
        if jacobi_iterations is not None and jacobi_iterations < 1:
            raise ValueError(f"LatentReasoner: jacobi_iterations must be >= 1 or None, got {jacobi_iterations}")
        self.model = model
        self.jacobi_iterations = jacobi_iterations
        self.sync = None  # a coconut.lockstep.RankSync under FSDP: equal decoder calls on every rank
        self.latent_id, self.start_id, self.end_id, self.eos_id = latent_id, start_id, end_id, eos_id
        self.pad_id = eos_id if pad_id is None else pad_id
        # The embedding width (a LoRA wrapper around the embeddings hides `embedding_dim`).
        width = getattr(model.get_input_embeddings(), "embedding_dim", None) or model.config.hidden_size
        # A buffer, so the scale travels with checkpoints and state dicts.
        self.register_buffer("thought_scale", torch.tensor(float(thought_scale)), persistent=True)
        self.projection: nn.Linear | None = None
        if latent_projection:
            self.projection = nn.Linear(width, width)
            with torch.no_grad():
                self.projection.weight.copy_(torch.eye(width))
                self.projection.bias.zero_()
        self.stop_head: nn.Module | None = stop_classifier_head(width) if stop_classifier else None

    @classmethod
    def from_tokenizer(cls, model: nn.Module, tokenizer, **kwargs) -> "LatentReasoner":
        """Build the engine with the special-token ids of `tokenizer` (see `coconut.engine.special_tokens`)."""
        from coconut.engine.special_tokens import latent_token_ids

        ids = latent_token_ids(tokenizer)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else ids["eos_id"]
        return cls(model, pad_id=kwargs.pop("pad_id", pad_id), **ids, **kwargs)

    @classmethod
    def from_pretrained(cls, folder, **model_kwargs) -> "LatentReasoner":
        """Load an exported run (`runs/NAME/export`): the plain HF model plus the latent settings."""
        import json
        from pathlib import Path

        from transformers import AutoModelForCausalLM

        folder = Path(folder)
        settings = json.loads((folder / "coconut.json").read_text())
        model = AutoModelForCausalLM.from_pretrained(folder, **model_kwargs)
        engine = cls(model, latent_id=settings["latent_id"], start_id=settings["start_id"], end_id=settings["end_id"],
                     eos_id=settings["eos_id"], pad_id=settings["pad_id"],
                     latent_projection=settings.get("latent_projection", False),
                     thought_scale=settings.get("thought_scale", 1.0),
                     stop_classifier=settings.get("stop_classifier", False),
                     jacobi_iterations=settings.get("jacobi_iterations"))
        if engine.projection is not None:
            engine.projection.load_state_dict(torch.load(folder / "latent_projection.pt", weights_only=True))
        if engine.stop_head is not None:
            engine.stop_head.load_state_dict(torch.load(folder / "stop_classifier.pt", weights_only=True))
        return engine

    # -- the pieces of the model the engine drives ----------------------------------------------

    @property
    def decoder(self) -> nn.Module:
        return self.model.get_decoder()

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(input_ids)

    def lm_head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.get_output_embeddings()(hidden)

    def thought_embedding(self, hidden: torch.Tensor) -> torch.Tensor:
        """The input embedding of a thought, from the last hidden state before it."""
        fed = hidden if self.projection is None else self.projection(hidden)
        return fed * self.thought_scale.to(fed.dtype)

    @torch.no_grad()
    def thought_scale_for(self, input_ids, attention_mask=None) -> float:
        """The factor that brings last hidden states to the mean norm of the batch's token embeddings."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        real = attention_mask.bool()
        embeds = self.embed(input_ids)[real]
        positions = positions_from_mask(attention_mask)  # batches may be left padded
        hidden = self.decoder(input_ids=input_ids, attention_mask=attention_mask,
                              position_ids=positions).last_hidden_state[real]
        return float(embeds.norm(dim=-1).mean() / hidden.norm(dim=-1).mean().clamp(min=1e-12))

    def decode_step(self, embeds, attention_mask, position_ids, cache) -> torch.Tensor:
        """One cached decoder pass; returns the last hidden states of the given positions."""
        out = self.decoder(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=True,
        )
        return out.last_hidden_state

    # -- the latent forward ---------------------------------------------------------------------

    def prefill(self, input_ids, attention_mask, position_ids=None, cache=None) -> PrefillResult:
        """Run the prefix, thought and final passes over a batch; keep the cache for more."""
        layout = align_thoughts(
            input_ids, attention_mask, self.latent_id, self.start_id, self.end_id, self.pad_id, position_ids
        )
        embeds = self.embed(layout.input_ids)  # (B, W, d)
        cache = DynamicCache(config=self.model.config) if cache is None else cache
        # Agreed before any pass: under FSDP every decoder call is a collective, so the all-reduce that
        # counts them must sit at the same point of every rank's sequence of collectives.
        rest = layout.first_thought + layout.thought_columns < layout.width
        most = self.sync.most(self.passes_needed(layout.thought_columns, rest)) if self.sync is not None else None
        if layout.thought_columns == 0:
            result = PrefillResult(self.decode_step(embeds, layout.attention_mask, layout.position_ids, cache),
                                   cache, layout, passes=1)
        elif self.jacobi_iterations is not None:
            result = self._prefill_jacobi(embeds, layout, cache)
        else:
            result = self._prefill_sequential(embeds, layout, cache)
        result.idle = self._idle_passes(most - result.passes, embeds) if most is not None else None
        return result

    def passes_needed(self, thoughts, rest: bool):
        """Decoder calls of a prefill with `thoughts` thought columns (an int, or a tensor of one per row)
        and tokens after them (`rest`): one pass without thoughts; with them a prefix pass, one per thought
        and one for the rest, or the Jacobi iterations and a final pass."""
        busy = self.jacobi_iterations + 1 if self.jacobi_iterations is not None else 1 + thoughts + int(rest)
        if torch.is_tensor(thoughts):
            return torch.where(thoughts > 0, busy, 1)
        return busy if thoughts > 0 else 1

    def _prefill_sequential(self, embeds, layout: ThoughtLayout, cache) -> PrefillResult:
        mask, pos = layout.attention_mask, layout.position_ids
        start, n_cols, width = layout.first_thought, layout.thought_columns, layout.width

        pieces = [self.decode_step(embeds[:, :start], mask[:, :start], pos[:, :start], cache)]
        previous = pieces[0][:, -1:]  # (B, 1, d): hidden state of <|start-latent|>
        for col in range(start, start + n_cols):
            # Rows whose thoughts ended already read their ordinary token (a hole or the suffix).
            thought = layout.is_thought[:, col : col + 1].unsqueeze(-1)
            step_in = torch.where(thought, self.thought_embedding(previous), embeds[:, col : col + 1])
            previous = self.decode_step(step_in, mask[:, : col + 1], pos[:, col : col + 1], cache)
            pieces.append(previous)
        rest = start + n_cols
        if rest < width:
            pieces.append(self.decode_step(embeds[:, rest:], mask, pos[:, rest:], cache))
        return PrefillResult(torch.cat(pieces, dim=1), cache, layout, passes=len(pieces))

    def _prefill_jacobi(self, embeds, layout: ThoughtLayout, cache) -> PrefillResult:
        """Thoughts by Jacobi iteration: a few full-width passes instead of one pass per thought."""
        mask, pos = layout.attention_mask, layout.position_ids
        start, n_cols = layout.first_thought, layout.thought_columns
        cols = slice(start, start + n_cols)
        thought = layout.is_thought[:, cols].unsqueeze(-1)  # (B, n, 1)
        inputs = embeds  # the first guess of every thought: its <|latent|> token embedding
        for _ in range(self.jacobi_iterations):
            hidden = self.decoder(inputs_embeds=inputs, attention_mask=mask, position_ids=pos,
                                  use_cache=False).last_hidden_state
            # Column c's thought reads the hidden state of column c - 1, as in the sequential engine.
            fed = self.thought_embedding(hidden[:, start - 1 : start - 1 + n_cols]).to(embeds.dtype)
            block = torch.where(thought, fed, embeds[:, cols])
            inputs = torch.cat([embeds[:, :start], block, embeds[:, start + n_cols :]], dim=1)
        hidden = self.decode_step(inputs, mask, pos, cache)  # the final pass fills the cache for decoding
        return PrefillResult(hidden, cache, layout, passes=self.jacobi_iterations + 1)

    def _idle_passes(self, count: int, embeds: torch.Tensor) -> torch.Tensor | None:
        """`count` idle decoder calls, so this rank makes as many as the busiest one (see coconut.engine.lockstep)."""
        idle = None
        for _ in range(count):
            out = self.decoder(inputs_embeds=embeds[:1, :1], use_cache=False).last_hidden_state
            term = out.float().sum() * 0.0  # in the loss, so the backward pass is collective too
            idle = term if idle is None else idle + term
        return idle

    def forward(self, input_ids, attention_mask=None, labels=None, position_ids=None) -> LatentOutput:
        """Latent forward pass; `labels` (-100 = ignored) give the next-token loss as in HF."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if labels is not None:
            self._check_labels(input_ids, labels)
        result = self.prefill(input_ids, attention_mask, position_ids)
        hidden = self._in_caller_columns(result)
        logits = self.lm_head(hidden)
        loss = None if labels is None else causal_lm_loss(logits, labels)
        if loss is not None and result.idle is not None:
            loss = loss + result.idle
        return LatentOutput(loss=loss, logits=logits, num_thoughts=result.layout.num_thoughts, hidden=hidden)

    def hidden_states(self, input_ids, attention_mask, position_ids=None) -> tuple[torch.Tensor, ThoughtLayout]:
        """Last hidden states (B, T, d) in the caller's columns, without the LM head (logits are large)."""
        result = self.prefill(input_ids, attention_mask, position_ids)
        return self._in_caller_columns(result), result.layout

    @staticmethod
    def _in_caller_columns(result: PrefillResult) -> torch.Tensor:
        hidden = result.hidden
        if not result.layout.is_identity:
            column = result.layout.column.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
            hidden = hidden.gather(1, column)
        return hidden

    # -- the learned stop -----------------------------------------------------------------------

    def stop_probability(self, hidden: torch.Tensor) -> torch.Tensor:
        """P(the thoughts end here) from the last hidden state of `<|start-latent|>` or of a thought."""
        if self.stop_head is None:
            raise ValueError("this engine has no stop classifier (build it with stop_classifier=True)")
        return torch.sigmoid(self.stop_head(hidden).squeeze(-1).float())

    def stop_targets(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Per position: 1 where `<|end-latent|>` follows, 0 where another thought follows, -1 elsewhere.

        Only positions that are `<|start-latent|>` or a thought make the decision."""
        here, after = input_ids[:, :-1], input_ids[:, 1:]
        deciding = ((here == self.start_id) | (here == self.latent_id)) & ((after == self.latent_id) | (after == self.end_id))
        targets = torch.where(deciding, (after == self.end_id).float(), torch.full_like(here, -1, dtype=torch.float))
        return torch.cat([targets, targets.new_full((targets.shape[0], 1), -1.0)], dim=1)

    def stop_loss(self, hidden: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor | None:
        """Binary cross entropy of the stop classifier on a batch; None when no position decides.

        The hidden states are detached: the classifier reads the thoughts without changing them, so
        the same model can be compared with a fixed and a learned number of thoughts."""
        targets = self.stop_targets(input_ids)
        deciding = targets >= 0
        if not bool(deciding.any()):
            return None
        logits = self.stop_head(hidden.detach()[deciding]).squeeze(-1).float()
        return F.binary_cross_entropy_with_logits(logits, targets[deciding])

    def _check_labels(self, input_ids: torch.Tensor, labels: torch.Tensor) -> None:
        if labels.shape != input_ids.shape:
            raise ValueError(f"labels have shape {tuple(labels.shape)}, input_ids {tuple(input_ids.shape)}")
        bad = (labels == self.latent_id) | ((input_ids == self.latent_id) & (labels != IGNORE_INDEX))
        if bad.any():
            row, pos = (int(i) for i in bad.nonzero()[0])
            raise LatentInputError(
                f"row {row}, position {pos}: a <|latent|> position is labelled; continuous thoughts "
                f"have no token to predict, so mask them with {IGNORE_INDEX} in the labels"
            )

    @torch.no_grad()
    def generate(self, input_ids, attention_mask=None, max_new_tokens: int = 64, **kwargs):
        """Batched greedy decoding with thoughts; see `coconut.generate.generate` for the options."""
        from coconut.engine.generation import generate

        return generate(self, input_ids, attention_mask, max_new_tokens=max_new_tokens, **kwargs)


def stop_classifier_head(width: int) -> nn.Module:
    """A small MLP from a last hidden state to the logit of "the thoughts end here".

    The layer norm matters: thoughts of models trained from scratch differ from one another mostly in
    direction, by small margins, and a bare linear probe learns them slowly."""
    return nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(), nn.Linear(width, 1))


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross entropy of logits[t] against labels[t + 1] over positions not equal to -100."""
    # Shift the labels, not the logits: slicing the (B, T, V) logits would copy them.
    targets = F.pad(labels, (0, 1), value=IGNORE_INDEX)[:, 1:]
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=IGNORE_INDEX
    )
