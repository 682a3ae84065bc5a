"""The engine's KV cache: room for the whole sequence, written by position, read as prefixes.

transformers' `DynamicLayer` concatenates the whole cache with every update. In decoding that copy costs more
than a small model's forward pass at batch 32; in training it costs memory, because autograd keeps each pass's
concatenated keys and values for the backward pass (with n thoughts, the cache once per pass).

Here each layer allocates room for the whole sequence once (`RoomLayer`) and every update writes its columns
into it with an ordinary in-place copy; attention reads the filled prefix as a view. Gradients flow by plain
autograd: each write is recorded (a `CopySlices` node hands the gradient of the written columns to the new keys
and values, and the rest to the room as it was), and each read is a view of the room as it is then.

One thing autograd cannot know: a later write never touches the columns an earlier read saw (a column is
written once). Its version counter counts every write to the room, so a prefix view saved by an earlier
pass's attention would be refused in the backward pass. `exact_prefix_reads` makes the check itself, with
saved-tensor hooks around the latent passes: every saved tensor keeps autograd's check except the views of the
cache's rooms. `RoomLayer` keeps the promise: a column is never written twice while gradients may still read it
(`crop` moves to fresh room). Where the caller records under saved-tensor hooks of its own
(`torch.autograd.graph.save_on_cpu`, say), those save every tensor and the engine adds none: the innermost hooks
are the only ones that act, and autograd makes no version check of what hooks save, so the prefix views need no
exemption there.

Compiled passes (`torch.compile`) go through as they are: the writes are ordinary operators, and the rooms are
ordinary tensors a graph can make, write and return.

Sliding-window layers stay transformers' own, unless a batch has masked columns inside rows: then they get room
too and the window is counted in positions by ready-made masks (`count_windows_in_positions`,
`coconut.engine.window_masks`).

The layer implements transformers' public layer interface (`CacheLayerMixin`: `update`, `get_seq_length`,
`get_mask_sizes`); the container is transformers' `Cache`. `tests/engine/test_kv_cache.py` pins what this
relies on, so a transformers release that changes it fails there.
"""

from __future__ import annotations

import contextlib

import torch
from transformers import Cache, DynamicCache
from transformers.cache_utils import CacheLayerMixin, DynamicLayer

from coconut.engine.window_masks import PositionWindows, refuse_unmasked_attention


class RoomLayer(CacheLayerMixin):
    """Keys and values (B, H, room, hd) of one layer; `length` columns are filled."""

    is_sliding = False
    is_croppable = True

    def __init__(self, room: int):
        super().__init__()
        self.room = room
        self.length = 0
        self.left: list[torch.Tensor] = []  # rooms a move left behind: views saved from them are still read

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        self.keys = self._new_room(key_states, max(self.room, key_states.shape[-2]))
        self.values = self._new_room(value_states, max(self.room, value_states.shape[-2]))
        self.length = 0
        self.is_initialized = True

    @staticmethod
    def _new_room(states: torch.Tensor, capacity: int) -> torch.Tensor:
        # Columns past `length` are never read (views are prefixes), so they need no zeros.
        return states.new_empty(*states.shape[:-2], capacity, states.shape[-1])

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start, end = self.length, self.length + key_states.shape[-2]
        if end > self.keys.shape[-2]:
            self._move(end + self.room)
        self.keys[..., start:end, :] = key_states
        self.values[..., start:end, :] = value_states
        self.length = end
        return self.keys[..., :end, :], self.values[..., :end, :]

    def _move(self, capacity: int) -> None:
        """Into fresh room of `capacity` columns: the filled part is copied (a recorded copy, so gradients
        reach it), and views saved from the old room keep reading the old storage."""
        moved = []
        for old in (self.keys, self.values):
            new = self._new_room(old, capacity)
            new[..., : self.length, :] = old[..., : self.length, :]
            moved.append(new)
        self._replace(*moved)

    def _replace(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        self.left += [self.keys, self.values]
        self.keys, self.values = keys, values

    def get_seq_length(self) -> int:
        return self.length if self.is_initialized else 0

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.get_seq_length() + query_length, 0

    def get_max_length(self) -> int:
        return -1  # grows when a sequence outruns its room

    def crop(self, tokens_to_remove: int) -> None:
        """Forget the last `-tokens_to_remove` columns (transformers' convention: a negative count)."""
        if tokens_to_remove > 0:
            raise ValueError(f"crop takes a negative count of columns to remove, got {tokens_to_remove}")
        if tokens_to_remove == 0 or not self.is_initialized:
            return
        self.length = max(self.length + tokens_to_remove, 0)
        if self.keys.requires_grad:  # a backward pass may still read the dropped columns: never overwrite them
            self._move(self.keys.shape[-2])

    def reset(self) -> None:
        self.keys = self.values = None
        self.left = []
        self.length = 0
        self.is_initialized = False

    # Beam search and batch surgery make new room (copies of the rows), as transformers' own layers do.
    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        if self.is_initialized:
            index = beam_idx.to(self.keys.device)
            self._replace(self.keys.index_select(0, index), self.values.index_select(0, index))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.is_initialized:
            self._replace(self.keys[indices, ...], self.values[indices, ...])

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.is_initialized:
            self._replace(self.keys.repeat_interleave(repeats, dim=0), self.values.repeat_interleave(repeats, dim=0))


class RoomCache(Cache):
    """transformers' `Cache` container over `RoomLayer`s."""

    def __init__(self, config, room: int):
        self._known: tuple[torch.Tensor, ...] = ()
        self._storages: set[int] = set()
        self.room = room
        self.position_windows: PositionWindows | None = None  # see count_windows_in_positions
        # The layer kinds the model needs, as its `DynamicCache` would build them: sliding windows keep theirs.
        kinds = DynamicCache(config=config).layers
        if kinds:
            super().__init__(layers=[RoomLayer(room) if type(layer) is DynamicLayer else layer for layer in kinds])
        else:
            super().__init__(layer_class_to_replicate=lambda: RoomLayer(room))

    def count_windows_in_positions(self) -> PositionWindows:
        """Before the first pass: the sliding-window layers keep every column too, and each call's masks count
        the window in positions (`coconut.engine.window_masks`), for a batch with masked columns inside rows."""
        if self.get_seq_length() != 0:
            raise RuntimeError("count_windows_in_positions: the cache already holds columns")
        windows = {layer.sliding_window for layer in self.layers if getattr(layer, "is_sliding", False)}
        if len(windows) != 1:
            raise ValueError(f"expected one sliding window size among the model's layers, found {sorted(windows)}")
        every_layer_slides = all(getattr(layer, "is_sliding", False) for layer in self.layers)
        self.layers = [RoomLayer(self.room) if getattr(layer, "is_sliding", False) else layer for layer in self.layers]
        self.position_windows = PositionWindows(windows.pop(), every_layer_slides)
        return self.position_windows

    def crop(self, tokens_to_remove: int) -> None:
        super().crop(tokens_to_remove)
        if self.position_windows is not None:
            self.position_windows.crop(self.get_seq_length())

    def room_storages(self) -> set[int]:
        """The storages of every room the layers have held (rooms left by a move still back saved views)."""
        rooms = tuple(t for layer in self.layers if isinstance(layer, RoomLayer) and layer.is_initialized
                      for t in (layer.keys, layer.values, *layer.left))
        if len(rooms) != len(self._known) or any(a is not b for a, b in zip(rooms, self._known)):
            self._known = rooms
            self._storages.update(t.untyped_storage().data_ptr() for t in rooms)
        return self._storages


@contextlib.contextmanager
def exact_prefix_reads(cache: RoomCache):
    """While recording a latent forward over `cache`: autograd's version check for the tensors saved for the
    backward pass, except for views of the cache's rooms (later passes write other columns of the same storage).

    The check is made when a tensor is read back: a compiled pass makes its room inside the graph and saves
    views of it before the layer holds it, so only then is it known to be a room. Under the caller's own
    saved-tensor hooks nothing is added (see the module's docstring)."""
    if not torch.is_grad_enabled() or not isinstance(cache, RoomCache) or callers_saved_tensor_hooks() is not None:
        yield
        return

    def pack(tensor):
        return tensor, tensor._version

    def unpack(packed):
        tensor, version = packed
        if tensor._version != version and tensor.untyped_storage().data_ptr() not in cache.room_storages():
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an inplace "
                f"operation: [{tensor.type()} {list(tensor.shape)}] is at version {tensor._version}; expected "
                f"version {version} instead")
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield


def callers_saved_tensor_hooks():
    """The (pack, unpack) pair of the innermost `saved_tensors_hooks` active here, or None. torch keeps no
    public getter; `tests/engine/test_kv_cache.py` pins this one."""
    return torch._C._autograd._top_saved_tensors_default_hooks(False)


def windows_by_position(cache: Cache, attention_mask: torch.Tensor, config) -> bool:
    """Whether this batch needs its sliding windows counted in positions, and if so switch `cache` to it: a
    sliding-window layer counts columns, so masked columns inside a row (where rows were moved to line up their
    thoughts) would shorten its window, and the thoughts would see other tokens than the model over the same
    text. Padding before or after a row is harmless. A cache of another kind, or an attention implementation
    that takes no ready-made mask, is refused."""
    if not any(getattr(layer, "is_sliding", False) for layer in cache.layers):
        return False
    attended = attention_mask.bool()
    started = attended.long().cumsum(1) > 0
    unfinished = attended.flip(1).long().cumsum(1).flip(1) > 0
    holes = (started & unfinished & ~attended).any(1)
    if not holes.any():
        return False
    if not isinstance(cache, RoomCache):
        row = int(holes.nonzero()[0])
        raise ValueError(
            f"row {row}: this model has sliding-window attention layers, whose window counts columns; lining up "
            f"the batch's thoughts left masked columns inside the row, and a {type(cache).__name__} cannot count "
            f"the window in positions: pass no cache (the engine makes its own) or use batch size 1")
    refuse_unmasked_attention(config)
    cache.count_windows_in_positions()
    return True
