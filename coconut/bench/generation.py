"""The generation figures of `coconut bench`: batched against one-at-a-time, and against Hugging Face `generate`.

The peer is the model's own `generate` (greedy, KV cache) on a plain prompt of the same length and batch: the
latent engine, which also runs the thought passes, should cost no more. Both decode the same number of new
tokens; the random model rarely emits EOS, and the token counts are reported so a difference would show.
"""

from __future__ import annotations

import statistics

import torch


def generation_figures(cfg, model, engine, latent_prompts, plain_prompts, timed, autocast) -> dict:
    """Times (seconds, medians) and ratios of batched latent generation, one-at-a-time latent generation and
    HF `generate`. `timed(fn)` returns fn's wall time; `autocast()` the benchmark's precision context."""
    model.eval()
    questions, plain = latent_prompts[: cfg.generate_questions], plain_prompts[: cfg.generate_questions]
    box: dict = {}

    def ours():
        box["batched"] = engine.generate(questions, max_new_tokens=cfg.after)

    def theirs():
        box["hf"] = model.generate(input_ids=plain, attention_mask=torch.ones_like(plain), max_new_tokens=cfg.after,
                                   do_sample=False, pad_token_id=engine.pad_id, eos_token_id=engine.eos_id)

    runs: dict[str, list[float]] = {"batched": [], "hf": []}
    with torch.no_grad(), autocast():
        for i in range(cfg.repeats + 1):  # the first pair warms up; then alternate which side goes first
            for name, fn in (("batched", ours), ("hf", theirs)) if i % 2 else (("hf", theirs), ("batched", ours)):
                elapsed = timed(fn)
                if i:
                    runs[name].append(elapsed)
        singles_s = timed(lambda: box.update(singles=[engine.generate(q.unsqueeze(0), max_new_tokens=cfg.after)
                                                      for q in questions]))
    batched, singles = box["batched"], box["singles"]
    same_tokens = all(torch.equal(s.sequences[0], batched.sequences[i, : s.sequences.shape[1]])
                      for i, s in enumerate(singles))
    batched_s, hf_s = statistics.median(runs["batched"]), statistics.median(runs["hf"])
    return {
        "generate_batched_questions_per_s": len(questions) / batched_s,
        "generate_single_questions_per_s": len(questions) / singles_s,
        "generate_speedup_batched_vs_single": singles_s / batched_s,
        "generate_batched_equals_single": same_tokens,
        "hf_generate_questions_per_s": len(questions) / hf_s,
        "generate_time_ratio_vs_hf": batched_s / hf_s,
        "generate_new_tokens": int(batched.num_generated.sum()),
        "hf_generate_new_tokens": new_tokens(box["hf"][:, plain.shape[1] :], engine.eos_id),
    }


def new_tokens(generated: torch.Tensor, eos_id: int) -> int:
    """Tokens decoded over all rows: up to and including each row's first EOS (HF pads after it)."""
    is_eos = generated == eos_id
    ends = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1) + 1, generated.shape[1])
    return int(ends.sum())
