"""A KV cache written once into reserved room: no copy of the cache per pass, in training or decoding.

transformers' `DynamicLayer` concatenates the whole cache with every update. In decoding that copy
costs more than a small model's forward pass at batch 32; in training it costs memory, because
autograd keeps each pass's concatenated keys and values for the backward pass: with n thoughts
the cache was held once per pass (a latent step's peak memory well above a plain step's).

Here each layer allocates room for the whole sequence once and writes every update into it. Attention
reads the filled part through a view, which autograd saves as it is (a view shares the room's storage).
The writes go through `.data`, an alias with its own version counter, so writing later columns does not
invalidate the views saved by earlier passes; that is safe because a column, once written, never
changes. Gradients reach the written keys and values through `_Filled`, which hands each pass's
gradient back to the new columns and to the view of the columns before them.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


class _Filled(torch.autograd.Function):
    """`room[..., :end, :]` once `new` fills [start, end): the gradient of the view is split between
    `before` (the view of [0, start) an earlier update returned) and `new`."""

    @staticmethod
    def forward(ctx, before: torch.Tensor, new: torch.Tensor, room: torch.Tensor) -> torch.Tensor:
        ctx.start = before.shape[-2]
        return room[..., : ctx.start + new.shape[-2], :]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad[..., : ctx.start, :], grad[..., ctx.start :, :], None


class WriteOnceLayer(DynamicLayer):
    """A `DynamicLayer` that writes into room for `room` positions (more room is made if a sequence outgrows it)."""

    def __init__(self, room: int):
        super().__init__()
        self.room = room
        self.length = 0
        self._rooms: list[torch.Tensor] | None = None

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self._rooms = None
        self.length = 0

    def _ensure_room(self, key_states: torch.Tensor, value_states: torch.Tensor, needed: int) -> None:
        have = 0 if self._rooms is None else self._rooms[0].shape[-2]
        if needed <= have:
            return
        capacity = max(needed, self.room if self._rooms is None else needed + self.room)
        rooms = []
        for i, states in enumerate((key_states, value_states)):
            room = states.new_empty(*states.shape[:-2], capacity, states.shape[-1])
            if self.length:  # the filled part moves; views saved earlier keep the old storage alive
                room.data[..., : self.length, :] = self._rooms[i].data[..., : self.length, :]
            rooms.append(room)
        self._rooms = rooms

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start, end = self.length, self.length + key_states.shape[-2]
        self._ensure_room(key_states, value_states, end)
        views = []
        for room, new, before in zip(self._rooms, (key_states, value_states), (self.keys, self.values)):
            room.data[..., start:end, :] = new.detach()
            tracked = new.requires_grad or (start > 0 and before.requires_grad)
            if torch.is_grad_enabled() and tracked:
                views.append(_Filled.apply(room[..., :0, :] if start == 0 else before, new, room))
            else:
                views.append(room[..., :end, :])
        self.length = end
        self.keys, self.values = views
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length if self.is_initialized else 0

    def crop(self, tokens_to_remove: int) -> None:
        super().crop(tokens_to_remove)
        if self.is_initialized:  # into fresh room: later writes must not overwrite columns a backward still reads
            keys, values = self.keys, self.values
            self._rooms, self.length = None, 0
            self.update(keys, values)

    def reset(self) -> None:
        super().reset()
        self._rooms = None
        self.length = 0


def write_once_cache(config, room: int) -> DynamicCache:
    """A cache with room for `room` positions per layer; layers of other kinds (sliding windows) are kept."""
    cache = DynamicCache(config=config)
    cache.layers = [WriteOnceLayer(room) if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache
