"""`coconut bench` on tiny shapes: every figure reported, and the figures consistent with each other."""

import math

import pytest
import torch

from coconut.bench.run import format_table, run_bench
from coconut.bench.settings import BenchConfig

# Timings of a tiny model on a shared CPU are noisy: a ratio outside this band means a broken measurement
# (a step not run, a wrong denominator), not a slow machine.
PLAUSIBLE_RATIO = (0.02, 50.0)


def check_timing_ratio(result, key):
    value = result[key]
    assert math.isfinite(value) and PLAUSIBLE_RATIO[0] < value < PLAUSIBLE_RATIO[1], (key, value)


def check_consistent(result, cfg):
    """The derived figures are the ratios of the measured ones (one timed pair: repeats=1)."""
    assert cfg.repeats == 1, "with one timed pair, the median ratio is the ratio of the two medians"
    seq_len = cfg.question + cfg.thoughts + 2 + cfg.after
    assert result["sequence_length"] == seq_len
    assert result["threads"] == torch.get_num_threads()
    assert result["plain_step_ms"] > 0 and result["latent_step_ms"] > 0
    assert result["train_step_ratio_vs_plain"] == pytest.approx(result["latent_step_ms"] / result["plain_step_ms"])
    assert result["latent_train_tokens_per_s"] == pytest.approx(cfg.batch * seq_len / (result["latent_step_ms"] / 1000))
    assert result["plain_peak_mb"] > 0 and result["latent_peak_mb"] > 0
    assert result["peak_memory_ratio_vs_plain"] == pytest.approx(result["latent_peak_mb"] / result["plain_peak_mb"])
    # Tensor bytes, not timings: the latent step keeps the plain step's activations within a small margin.
    assert 0.8 < result["peak_memory_ratio_vs_plain"] < 1.5, result["peak_memory_ratio_vs_plain"]
    assert result["generate_speedup_batched_vs_single"] == pytest.approx(
        result["generate_batched_questions_per_s"] / result["generate_single_questions_per_s"])
    assert result["generate_time_ratio_vs_hf"] == pytest.approx(
        result["hf_generate_questions_per_s"] / result["generate_batched_questions_per_s"])
    most = cfg.generate_questions * cfg.after
    assert 0 < result["generate_new_tokens"] <= most and 0 < result["hf_generate_new_tokens"] <= most
    for key in ("train_step_ratio_vs_plain", "generate_speedup_batched_vs_single", "generate_time_ratio_vs_hf"):
        check_timing_ratio(result, key)
    assert result["generate_batched_equals_single"] is True
    assert 0.0 <= result["max_abs_diff_vs_recompute"] < 1e-5
    assert result["decoder_calls"] == cfg.thoughts + 1
    assert result["same_calls_step_ratio_vs_plain"] == pytest.approx(result["same_calls_step_ms"] / result["plain_step_ms"])
    assert result["train_step_ratio_vs_same_calls"] == pytest.approx(result["latent_step_ms"] / result["same_calls_step_ms"])
    for key in ("same_calls_step_ratio_vs_plain", "train_step_ratio_vs_same_calls"):
        check_timing_ratio(result, key)


def test_tiny_bench_reports_every_figure(capsys):
    cfg = BenchConfig(layers=1, width=32, heads=2, vocab=64, batch=4, question=6, thoughts=2, after=3,
                      repeats=1, generate_questions=3)
    result = run_bench(cfg, progress=False)
    check_consistent(result, cfg)
    assert result["sequence_length"] == 6 + 2 + 2 + 3
    assert "jacobi_step_ratio_vs_sequential" not in result, "no Jacobi figures unless asked"
    table = format_table(result)
    assert f"| train_step_ratio_vs_plain | {result['train_step_ratio_vs_plain']:.3f} |" in table
    assert f"| max_abs_diff_vs_recompute | {result['max_abs_diff_vs_recompute']:.1e} | <= 0.0001 ok |" in table
    assert "| batched tokens == single tokens | True | True |" in table
    assert (f"| the same 3 decoder calls through transformers' cache, nothing fed back (ms) | "
            f"{result['same_calls_step_ms']:.0f} |") in table
    assert f"| train_step_ratio_vs_same_calls | {result['train_step_ratio_vs_same_calls']:.3f} |" in table


def test_bench_compares_jacobi_thoughts_and_runs_bf16():
    cfg = BenchConfig(layers=1, width=32, heads=2, vocab=64, batch=4, question=6, thoughts=3, after=3,
                      repeats=1, generate_questions=2, jacobi_iterations=3, precision="bf16")
    result = run_bench(cfg, progress=False)
    check_consistent(result, cfg)
    assert result["jacobi_iterations"] == 3
    check_timing_ratio(result, "jacobi_step_ratio_vs_sequential")
    assert 0.0 <= result["jacobi_loss_diff_vs_sequential"] < 1e-5, "3 iterations settle 3 thoughts exactly"
    table = format_table(result)
    assert (f"| jacobi_step_ratio_vs_sequential (3 iterations) | {result['jacobi_step_ratio_vs_sequential']:.3f} |"
            in table)
    assert "cpu bf16" in table and result["config"]["precision"] == "bf16"


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("thoughts", [0, 1, 4])
def test_same_calls_compute_the_plain_models_loss(arch, thoughts):
    """The reference step makes the latent step's decoder calls, and they compute what one plain call does:
    the same loss and gradients (so its time is the calls' cost, not another computation's)."""
    from coconut.bench.builders import build_batch, build_model
    from coconut.bench.same_calls import call_bounds, same_calls_loss

    cfg = BenchConfig(arch=arch, layers=2, width=32, heads=2, vocab=64, batch=3, question=5, thoughts=thoughts,
                      after=4)
    model = build_model(cfg).eval()
    _, plain_ids, labels, _ = build_batch(cfg)
    mask = torch.ones_like(plain_ids)
    bounds = call_bounds(cfg.question, cfg.thoughts, plain_ids.shape[1])
    assert len(bounds) - 1 == (thoughts + 1 if thoughts else 1)
    assert bounds[0] == 0 and bounds[-1] == plain_ids.shape[1] and bounds == sorted(set(bounds))
    if thoughts:  # the prefix ends at <|start-latent|>; one column per thought but the last
        assert bounds[1] == cfg.question + 1 and all(b - a == 1 for a, b in zip(bounds[1:-2], bounds[2:-1]))
    grads = []
    for loss_of in (lambda: model(input_ids=plain_ids, attention_mask=mask, labels=labels).loss,
                    lambda: same_calls_loss(model, plain_ids, mask, labels, bounds)):
        model.zero_grad()
        loss = loss_of()
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    (want, want_grads), (got, got_grads) = grads
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_graphs_left_without_cuda_graphs_are_counted_with_their_reasons():
    """On a GPU, inductor logs each graph it runs without CUDA graphs; the compiled bench reports them."""
    from torch._inductor import cudagraph_utils

    from coconut.bench.compiled import cudagraph_skips

    with cudagraph_skips() as skipped:
        cudagraph_utils.log_cudagraph_skip_and_bump_counter("skipping cudagraphs due to mutated inputs (2 instances)")
    cudagraph_utils.log_cudagraph_skip_and_bump_counter("after the block: not counted")
    assert skipped == ["skipping cudagraphs due to mutated inputs (2 instances)"]


def test_new_tokens_count_up_to_each_first_eos():
    from coconut.bench.generation import new_tokens

    eos = 0
    generated = torch.tensor([[5, 6, 7], [5, eos, eos], [eos, eos, eos]])
    assert new_tokens(generated, eos) == 3 + 2 + 1


@pytest.mark.slow
def test_bench_counts_fsdp_all_gathers_with_two_ranks():
    cfg = BenchConfig(layers=2, width=32, heads=2, vocab=64, batch=4, question=6, thoughts=3, after=3,
                      repeats=1, generate_questions=2, fsdp_ranks=2)
    result = run_bench(cfg, progress=False)
    assert result["fsdp_ranks"] == 2 and result["fsdp_layer_units"] == 2
    full = result["fsdp_all_gathers"]["FULL_SHARD"]
    assert full["latent"]["per_layer_unit"] == 4 + 1, "FULL_SHARD: one gather per pass (n + 1) and one backward"
    assert result["fsdp_auto_latent_per_layer_unit"] <= result["fsdp_auto_plain_per_layer_unit"] + 2
    table = format_table(result)
    plain, latent = full["plain"]["step"], full["latent"]["step"]
    assert f"| FSDP FULL_SHARD, 2 ranks, 3 units: all-gathers per step, plain / latent (4 passes) | {plain} / {latent} |" \
        in table
    assert "latent <= plain + 2 ok" in table


def test_bench_times_compiled_passes(aot_eager):
    """--compile: compiled steps against eager ones, the compile time apart, the same loss (aot_eager here)."""
    cfg = BenchConfig(layers=1, width=32, heads=2, vocab=64, batch=4, question=6, thoughts=3, after=3,
                      repeats=1, generate_questions=2, compile="default")
    result = run_bench(cfg, progress=False)
    check_consistent(result, cfg)
    check_timing_ratio(result, "compiled_step_ratio_vs_eager")
    assert result["compile_mode"] == "default" and result["compile_warmup_s"] > 0 and aot_eager
    assert 0.0 <= result["compiled_loss_diff_vs_eager"] < 1e-5
    assert result["cudagraph_skips"] == 0 and result["cudagraph_skip_reasons"] == [], "no CUDA graphs asked for"
    table = format_table(result)
    assert f"| compiled_step_ratio_vs_eager | {result['compiled_step_ratio_vs_eager']:.3f} |" in table
