"""Attention of a single-column thought pass that reads the cache without copying it.

A thought pass has one query column. PyTorch's SDPA on a CPU with dropout (GPT-2 trains with attention
dropout 0.1) takes its math path, which scales a copy of the keys and keeps it for the backward pass:
one copy of the whole cache per thought, the memory `kv_cache` exists to avoid. For one query the
attention is two small matrix products, so it is written out here: autograd keeps the query, the
probabilities (one row per head) and the cache's own views. Grouped-query heads are folded into the
query (no repeated keys). Everywhere else SDPA's fused kernels keep no copy either (and keep less than
the probabilities), so passes without dropout, off the CPU or with more than one column, and anything
SDPA does that this does not (soft-capping, attention sinks), go to transformers' SDPA unchanged.

The engine switches a model whose attention is "sdpa" to this implementation for its thought passes
while gradients are recorded (`thought_attention`); masks are built as for SDPA.
"""

from __future__ import annotations

import contextlib

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

NAME = "coconut_single_query_sdpa"


def single_query_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """transformers' attention interface: query (B, H, q, hd), key/value (B, Hkv, K, hd) -> ((B, q, H, hd), None)."""
    if (query.shape[2] != 1 or dropout == 0.0 or query.device.type != "cpu" or kwargs.get("softcap") is not None
            or kwargs.get("s_aux") is not None):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    batch, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    scaling = dim**-0.5 if scaling is None else scaling
    grouped = (query * scaling).reshape(batch, kv_heads, heads // kv_heads, dim)  # (B, Hkv, rep, hd)
    scores = torch.matmul(grouped, key.transpose(-1, -2))  # (B, Hkv, rep, K)
    if attention_mask is not None:  # (B, 1, 1, K): True (or 0.0) where attended
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, float("-inf"))
        else:
            scores = scores + attention_mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    if dropout > 0.0:
        probs = torch.nn.functional.dropout(probs, p=dropout, training=True)
    out = torch.matmul(probs, value)  # (B, Hkv, rep, hd)
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, single_query_attention)
AttentionMaskInterface.register(NAME, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


@contextlib.contextmanager
def thought_attention(config):
    """Within: single-column passes of an SDPA model read the cache without copies (only while training:
    without gradients nothing is kept, and SDPA's fused kernels are faster)."""
    if getattr(config, "_attn_implementation", None) != "sdpa" or not torch.is_grad_enabled():
        yield
        return
    saved = [(c, c._attn_implementation_internal) for c in _with_sub_configs(config)]
    config._attn_implementation = NAME  # the setter passes it on to the sub-configs
    try:
        yield
    finally:  # each config gets back its own (a vision sub-config may have had another)
        for c, value in saved:
            c._attn_implementation_internal = value


def _with_sub_configs(config) -> list:
    found, stack = [], [config]
    while stack:
        c = stack.pop()
        found.append(c)
        stack += [sub for key in getattr(c, "sub_configs", {}) if (sub := getattr(c, key, None)) is not None]
    return found
