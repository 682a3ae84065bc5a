"""A KV cache for decoding that writes into spare room instead of copying itself every token.

transformers' `DynamicLayer` concatenates the whole cache with each new token: at batch 32 and
a few hundred positions that copy costs more than a small model's forward pass. For inference
(no autograd, so in-place writes are safe) each layer here allocates room for the prompt plus
the tokens still to come, and hands attention views of the filled part.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


class RoomyLayer(DynamicLayer):
    """A `DynamicLayer` that keeps `spare` free positions after what it holds."""

    def __init__(self, spare: int):
        super().__init__()
        self.spare = spare
        self.length = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self._key_room = self._value_room = None
        self.length = 0

    def _ensure_room(self, key_states: torch.Tensor, value_states: torch.Tensor, needed: int) -> None:
        room = 0 if self._key_room is None else self._key_room.shape[-2]
        if needed <= room:
            return
        capacity = needed + self.spare
        keys = key_states.new_empty(*key_states.shape[:-2], capacity, key_states.shape[-1])
        values = value_states.new_empty(*value_states.shape[:-2], capacity, value_states.shape[-1])
        if self.length:
            keys[..., : self.length, :] = self._key_room[..., : self.length, :]
            values[..., : self.length, :] = self._value_room[..., : self.length, :]
        self._key_room, self._value_room = keys, values

    def update(self, key_states, value_states, *args, **kwargs):
        if torch.is_grad_enabled() and (key_states.requires_grad or value_states.requires_grad):
            raise RuntimeError("RoomyLayer writes in place and is for inference only; use DynamicCache to train")
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        self._ensure_room(key_states, value_states, end)
        self._key_room[..., self.length : end, :] = key_states
        self._value_room[..., self.length : end, :] = value_states
        self.length = end
        self.keys = self._key_room[..., :end, :]
        self.values = self._value_room[..., :end, :]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length if self.is_initialized else 0

    def crop(self, tokens_to_remove: int) -> None:
        super().crop(tokens_to_remove)
        if self.is_initialized:
            self.length = self.keys.shape[-2]

    def reset(self) -> None:
        super().reset()
        self.length = 0


def inference_cache(config, spare: int) -> DynamicCache:
    """A cache for decoding `spare` more tokens; layers of other kinds (sliding windows) are kept."""
    cache = DynamicCache(config=config)
    cache.layers = [RoomyLayer(spare) if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache
