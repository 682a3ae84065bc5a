"""The latent engine: a causal LM whose continuous thoughts feed back its last hidden state.

At every `<|latent|>` position the input embedding is replaced by the last hidden state of the
position before it (optionally through a learned projection). Thoughts depend on each other, so
they are computed one column at a time, reusing the KV cache:

    prefix pass  (columns [0, P))              -> hidden state of the <|start-latent|> column
    thought pass (column P + j), j < n_max - 1 -> one position each, cached
    final pass   (columns [P + n_max - 1, W))  -> the last thought (no thought reads its state) and the rest

n_max + 1 decoder calls, as the release makes.

Everything stays differentiable, so training back-propagates through the chain of thoughts.
The batch is first moved by `align_thoughts` so that all thoughts share columns. Jacobi thoughts
(`coconut.engine.jacobi`), rank lock-step (`coconut.engine.lockstep`), the learned stop
(`coconut.engine.stop_head`) and export (`coconut.engine.export`) live in their own modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import Cache

from coconut.config import DEFAULT_MAX_NEW_TOKENS
from coconut.engine.alignment import LatentInputError, ThoughtLayout, align_thoughts, positions_from_mask
from coconut.engine.loss import IGNORE_INDEX, causal_lm_loss
from coconut.engine.projection import build_projection
from coconut.engine.kv_cache import RoomCache, exact_prefix_reads, windows_by_position
from coconut.engine.stop_head import StopHead
from coconut.engine.thought_attention import thought_attention


@dataclass
class LatentOutput:
    loss: torch.Tensor | None  # mean next-token cross entropy over labelled positions
    logits: torch.Tensor  # (B, T, V), in the caller's layout
    num_thoughts: torch.Tensor  # (B,)
    hidden: torch.Tensor | None = None  # (B, T, d) last hidden states, in the caller's layout


@dataclass
class Passes:
    """The result of running the latent passes over a batch."""

    hidden: torch.Tensor  # (B, W, d): last hidden state of every aligned column
    cache: Cache  # written once per column (coconut.engine.kv_cache)
    layout: ThoughtLayout
    count: int  # decoder calls made for the whole batch
    idle: torch.Tensor | None = None  # zero, tied to the idle passes that kept ranks in step (add it to the loss)

    def in_caller_columns(self) -> torch.Tensor:
        """(B, T, d) hidden states at the caller's original positions."""
        if self.layout.is_identity:
            return self.hidden
        column = self.layout.column.unsqueeze(-1).expand(-1, -1, self.hidden.shape[-1])
        return self.hidden.gather(1, column)


class LatentReasoner(nn.Module):
    """Wraps any Hugging Face causal LM to run COCONUT's continuous thoughts.

    Args:
        model: a `*ForCausalLM` model (its decoder, input embeddings and LM head are used).
        latent_id, start_id, end_id: token ids of `<|latent|>`, `<|start-latent|>`, `<|end-latent|>`.
        eos_id: end-of-sequence id; generation stops a row when it emits it.
        pad_id: id written into padding and holes (defaults to `eos_id`); never attended.
        latent_projection: learn a map from the last hidden state to the next input embedding, instead of
            feeding the hidden state as it is: linear, initialised to the identity, or with `projection_dim`
            CODI's MLP (`projection_dropout`, `projection_norm`: see `coconut.engine.projection`).
        thought_scale: multiply the fed-back state by this factor. The last hidden state comes out
            of the final norm (norm ~ sqrt(width)), while token embeddings of a model trained from
            scratch are far smaller; scaling the thought to the embeddings' size keeps it from
            swamping the residual stream (see `thought_scale_for`).
        stop_classifier: add a `StopHead` that decides when to emit `<|end-latent|>`.
        jacobi_iterations: compute the thoughts in parallel by this many Jacobi iterations (PCCoT,
            see `coconut.engine.jacobi`); None: one cached pass per thought.
        compile_mode: run every cached decoder call (prefix, thought and final passes, decoding steps) through
            `torch.compile` in this mode ("default", "reduce-overhead", ...), with dynamic shapes and no graph
            breaks allowed; None: eager.
    """

    def __init__(self, model: nn.Module, latent_id: int, start_id: int, end_id: int, eos_id: int,
                 pad_id: int | None = None, latent_projection: bool = False, thought_scale: float = 1.0,
                 stop_classifier: bool = False, jacobi_iterations: int | None = None,
                 projection_dim: int | None = None, projection_dropout: float = 0.0, projection_norm: bool = True,
                 compile_mode: str | None = None):
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
        self.compile_mode = compile_mode
        self._compiled = None  # the compiled decoder call, made at the first pass (never pickled: see __getstate__)
        self.sync = None  # a coconut.engine.lockstep.RankSync under FSDP: equal decoder calls on every rank
        self.latent_id, self.start_id, self.end_id, self.eos_id = latent_id, start_id, end_id, eos_id
        self.pad_id = eos_id if pad_id is None else pad_id
        # The embedding width (a LoRA wrapper around the embeddings hides `embedding_dim`).
        width = getattr(model.get_input_embeddings(), "embedding_dim", None) or model.config.hidden_size
        # A buffer, so the scale travels with checkpoints and state dicts.
        self.register_buffer("thought_scale", torch.tensor(float(thought_scale)), persistent=True)
        self.projection: nn.Module | None = None
        if latent_projection:
            self.projection = build_projection(width, projection_dim, projection_dropout, projection_norm)
        self.projection_settings = {"projection_dim": projection_dim, "projection_dropout": projection_dropout,
                                    "projection_norm": projection_norm}
        self._layer_capture: list | None = None  # see layer_states
        self.stop_head: StopHead | None = StopHead(width) if stop_classifier else None
        # Set by from_pretrained (coconut.engine.export): what `answer` needs beyond the weights.
        self.prompt_format, self.tokenizer, self.exported_from = None, None, None

    @classmethod
    def from_tokenizer(cls, model: nn.Module, tokenizer, **kwargs) -> "LatentReasoner":
        """Build the engine with the special-token ids of `tokenizer` (see `coconut.engine.special_tokens`)."""
        from coconut.engine.special_tokens import SpecialIds

        ids = SpecialIds.from_tokenizer(tokenizer)
        kwargs.setdefault("pad_id", ids.pad)
        return cls(model, latent_id=ids.latent, start_id=ids.start, end_id=ids.end, eos_id=ids.eos, **kwargs)

    @classmethod
    def from_pretrained(cls, folder, **model_kwargs) -> "LatentReasoner":
        """Load an exported folder (`runs/NAME/export`): the plain HF model plus the latent settings."""
        from coconut.engine.export import load_engine

        return load_engine(cls, folder, **model_kwargs)

    def save_pretrained(self, folder, tokenizer=None, prompt=None, results=None, **training) -> None:
        """Write a folder `from_pretrained` reads (LoRA adapters are merged into the weights), with the prompt
        format `answer` reads (a `PromptFormat`) and a model card (with the run's `results` when given)."""
        from coconut.engine.export import save_engine

        save_engine(self, folder, tokenizer, prompt, results, **training)

    def answer(self, questions, steps=None, batch_size: int = 32, max_new_tokens: int | None = None):
        """Ask an exported model (`from_pretrained`) a question, or a list of them: the prompt it was tested on,
        the run's decoding and scoring rule; an `Answer` (a list for a list). See `coconut.engine.answering`."""
        from coconut.engine.answering import ask

        return ask(self, questions, steps=steps, batch_size=batch_size, max_new_tokens=max_new_tokens)

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

    def cached_pass(self, embeds, attention_mask, position_ids, cache) -> torch.Tensor:
        """One decoder call over some columns, appending them to `cache`; their last hidden states."""
        call = self._decoder_call if self.compile_mode is None else self._compiled_call()
        if (windows := getattr(cache, "position_windows", None)) is not None:  # see coconut.engine.window_masks
            attention_mask = windows.masks(self.model.config, embeds, attention_mask, position_ids, cache)
        out = call(embeds, attention_mask, position_ids, cache, self._layer_capture is not None)
        if self._layer_capture is not None:
            self._layer_capture[:] = [out.hidden_states]  # the last call is the final pass
        return out.last_hidden_state

    def _decoder_call(self, embeds, attention_mask, position_ids, cache, all_layers: bool):
        return self.decoder(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
                            cache=cache, use_cache=True, output_hidden_states=all_layers)

    def _compiled_call(self):
        if self._compiled is None:
            # Dynamic shapes: a pass's width and the cache's length change from column to column and batch to batch.
            self._compiled = torch.compile(self._decoder_call, mode=self.compile_mode, dynamic=True, fullgraph=True)
        return self._compiled

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: the live engine keeps its compiled call
        state["_compiled"] = None
        return state

    # -- the latent forward ---------------------------------------------------------------------

    def run_passes(self, input_ids, attention_mask, position_ids=None, cache=None) -> Passes:
        """The prefix, thought and final passes over a batch (training and generation's prompt); keeps the cache."""
        layout = align_thoughts(input_ids, attention_mask, self.latent_id, self.start_id, self.end_id, self.pad_id,
                                position_ids)
        embeds = self.embed(layout.input_ids)  # (B, W, d)
        cache = RoomCache(self.model.config, room=embeds.shape[1]) if cache is None else cache
        windows_by_position(cache, layout.attention_mask, self.model.config)
        # Agreed before any pass: under FSDP every decoder call is a collective, so the all-reduce that
        # counts them must sit at the same point of every rank's sequence of collectives.
        count = self.passes_needed(layout.thought_columns)
        most = self.sync.most(count) if self.sync is not None else None
        with exact_prefix_reads(cache):
            if layout.thought_columns == 0:
                hidden = self.cached_pass(embeds, layout.attention_mask, layout.position_ids, cache)
            elif self.jacobi_iterations is not None:
                from coconut.engine.jacobi import jacobi_thoughts

                hidden = jacobi_thoughts(self, embeds, layout, cache, self.jacobi_iterations)
            else:
                hidden = self._sequential_thoughts(embeds, layout, cache)
        passes = Passes(hidden, cache, layout, count)
        if most is not None:
            from coconut.engine.lockstep import idle_passes

            passes.idle = idle_passes(self.decoder, most - count, embeds)
        return passes

    def passes_needed(self, thoughts):
        """Decoder calls for `thoughts` thought columns (an int, or a tensor of one per row): one pass without
        thoughts; with them a prefix pass, one per thought but the last, and one for the last thought and the
        rest (the release's n + 1), or the Jacobi iterations and a final pass."""
        busy = self.jacobi_iterations + 1 if self.jacobi_iterations is not None else 1 + thoughts
        if torch.is_tensor(thoughts):
            return torch.where(thoughts > 0, busy, 1)
        return busy if thoughts > 0 else 1

    def _sequential_thoughts(self, embeds, layout: ThoughtLayout, cache) -> torch.Tensor:
        mask, pos = layout.attention_mask, layout.position_ids
        start, last = layout.first_thought, layout.first_thought + layout.thought_columns - 1
        # A single-column pass (a thought, or a prefix of one token) attends without copying the cache.
        with thought_attention(self.model.config):
            pieces = [self.cached_pass(embeds[:, :start], mask[:, :start], pos[:, :start], cache)]
            previous = pieces[0][:, -1:]  # (B, 1, d): hidden state of <|start-latent|>
            for col in range(start, last + 1):
                # Rows whose thoughts ended already read their ordinary token (a hole or the suffix).
                thought = layout.is_thought[:, col : col + 1].unsqueeze(-1)
                step_in = torch.where(thought, self.thought_embedding(previous), embeds[:, col : col + 1])
                if col == last:  # no thought reads the last one's state: it joins the rest in the final pass
                    step_in = torch.cat([step_in, embeds[:, col + 1 :]], dim=1)
                    pieces.append(self.cached_pass(step_in, mask, pos[:, col:], cache))
                    break
                previous = self.cached_pass(step_in, mask[:, : col + 1], pos[:, col : col + 1], cache)
                pieces.append(previous)
        return torch.cat(pieces, dim=1)

    def forward(self, input_ids, attention_mask=None, labels=None, position_ids=None) -> LatentOutput:
        """Latent forward pass; `labels` (-100 = ignored) give the next-token loss as in HF."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if labels is not None:
            self._check_labels(input_ids, labels)
        passes = self.run_passes(input_ids, attention_mask, position_ids)
        hidden = passes.in_caller_columns()
        logits = self.lm_head(hidden)
        loss = None if labels is None else causal_lm_loss(logits, labels)
        if loss is not None and passes.idle is not None:
            loss = loss + passes.idle
        return LatentOutput(loss=loss, logits=logits, num_thoughts=passes.layout.num_thoughts, hidden=hidden)

    def hidden_states(self, input_ids, attention_mask, position_ids=None) -> tuple[torch.Tensor, ThoughtLayout]:
        """Last hidden states (B, T, d) in the caller's columns, without the LM head (logits are large)."""
        passes = self.run_passes(input_ids, attention_mask, position_ids)
        return passes.in_caller_columns(), passes.layout

    def stop_loss(self, hidden: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor | None:
        """The stop head's loss on a batch (see `StopHead.loss`); None when no position decides."""
        return self.stop_head.loss(hidden, StopHead.targets(input_ids, self.start_id, self.latent_id, self.end_id))

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
    def generate(self, input_ids, attention_mask=None, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, **kwargs):
        """Batched greedy decoding with thoughts; see `coconut.engine.generation.generate` for the options."""
        from coconut.engine.generation import generate

        return generate(self, input_ids, attention_mask, max_new_tokens=max_new_tokens, **kwargs)
