"""`make gpu-check`: the GPU figures of docs/bench.md, measured in one prepared run on a CUDA machine.

1. `coconut bench` at GPT-2-small shape (12 x 768, vocab 50257, batch 32, 96 question tokens + 6 thoughts
   + 32 after) in bf16: latent training tokens/s, peak memory, train_step_ratio_vs_plain, the
   batched-generation speed-up, generation against Hugging Face `generate`, and Jacobi (PCCoT) thoughts
   against sequential ones, and the same decoder calls through transformers' own cache (what the n + 1 calls
   cost before the engine adds anything);
2. the same bench with the passes compiled (`latent.compile`, `--compile`, reduce-overhead by default: CUDA
   graphs for the launch-bound one-column passes), compiled steps paired with eager ones; a failure to
   compile is recorded in the report and does not stop the rest;
3. a short Lightning training of a tiny COCONUT model with bf16-mixed on one GPU, and with FSDP on
   every visible GPU (the multi-pass latent forward inside FSDP units; ranks kept in step);
4. prints a Markdown block (with the date and the GPU); OUT/gpu_check.json is rewritten after every stage, so a
   run stopped by a time limit keeps what it measured.

    python tools/gpu_check.py [--out DIR] [--tiny] [--compile MODE|none]
    (--tiny: small shapes, also runs on a CPU, for tests; it compiles nothing unless --compile is given)
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path


def bench_config(tiny: bool, device: str):
    from coconut.bench.settings import BenchConfig

    if tiny:
        cfg = BenchConfig(layers=1, width=32, heads=2, vocab=64, batch=4, question=6, thoughts=3, after=3, repeats=1,
                          generate_questions=2, device=device, precision="bf16", jacobi_iterations=3)
    else:
        cfg = BenchConfig(arch="gpt2", layers=12, width=768, heads=12, vocab=50257, batch=32, question=96, thoughts=6,
                          after=32, repeats=10, generate_questions=32, device=device, precision="bf16",
                          jacobi_iterations=6)
    return cfg


def bench_figures(tiny: bool, device: str) -> dict:
    from coconut.bench.run import format_table, run_bench

    result = run_bench(bench_config(tiny, device), progress=False)
    result["table"] = format_table(result)
    return result


def compiled_figures(cfg, mode: str) -> dict:
    """The bench with compiled passes in `mode` beside eager ones, or {"error": why} when they do not compile:
    one prepared run on a lent machine must still bring back everything else."""
    from dataclasses import replace

    from coconut.bench.run import run_bench

    try:
        result = run_bench(replace(cfg, compile=mode, jacobi_iterations=0, repeats=min(cfg.repeats, 5)),
                           progress=False)
    except Exception as error:  # noqa: BLE001 - reported, not raised: see the docstring
        return {"compile_mode": mode, "error": f"{type(error).__name__}: {error}"[:2000]}
    keep = ("compile_mode", "compiled_latent_step_ms", "compiled_step_ratio_vs_eager", "compile_warmup_s",
            "compiled_loss_diff_vs_eager", "plain_step_ms", "latent_step_ms", "cudagraph_skips",
            "cudagraph_skip_reasons")
    figures = {key: result[key] for key in keep}
    figures["compiled_step_ratio_vs_plain"] = result["compiled_latent_step_ms"] / result["plain_step_ms"]
    return figures


def training_smoke(root: Path, strategy_args: list[str], device_args: list[str]) -> dict:
    """A tiny curriculum run through Lightning; returns its test metrics and seconds."""
    root_of_repo = str(Path(__file__).resolve().parents[1])  # tests/ is a package at the repository root
    if root_of_repo not in sys.path:
        sys.path.insert(0, root_of_repo)
    from tests.integration.tiny_run import tiny_overrides

    from coconut.experiment import load_config
    from coconut.train.run import train

    cfg = load_config("demo_coconut", tiny_overrides(root, *strategy_args, *device_args, "trainer.max_epochs=3"))
    t0 = time.time()
    results = train(cfg)
    return {"strategy": cfg.trainer.strategy, "precision": cfg.trainer.precision, "devices": cfg.trainer.devices,
            "seconds": round(time.time() - t0, 1), "test": results.get("test", {})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/gpu_check")
    parser.add_argument("--tiny", action="store_true", help="small shapes; runs on a CPU too (for tests)")
    parser.add_argument("--compile", default=None, help="torch.compile mode of the compiled-passes bench, or none "
                        "(default: reduce-overhead on a GPU, none with --tiny)")
    args = parser.parse_args()
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.tiny:
        print("gpu-check: no CUDA GPU is visible here; nothing measured (docs/bench.md keeps its figures)", file=sys.stderr)
        return 2
    device = "cuda" if cuda else "cpu"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"date": datetime.date.today().isoformat(), "device": device,
              "gpu": torch.cuda.get_device_name() if cuda else None, "gpus": torch.cuda.device_count(),
              "torch": torch.__version__}

    def save() -> None:  # after every stage: a run cut short by its time limit still leaves what it measured
        from coconut.atomic import write_text

        write_text(out / "gpu_check.json", json.dumps(report, indent=2, default=str) + "\n")

    report["bench"] = bench_figures(args.tiny, device)
    print(report["bench"]["table"], flush=True)
    save()
    mode = args.compile or ("none" if args.tiny else "reduce-overhead")
    if mode != "none":
        report["compiled"] = compiled_figures(bench_config(args.tiny, device), mode)
        print(json.dumps(report["compiled"], indent=2), flush=True)
        save()
    with tempfile.TemporaryDirectory() as tmp:
        accel = ["trainer=gpu"] if cuda else ["trainer=cpu", "trainer.precision=bf16-mixed"]
        report["bf16_training"] = training_smoke(Path(tmp) / "bf16", [], accel)
        save()
        if cuda:
            devices = f"trainer.devices={torch.cuda.device_count()}"
            # FSDP keeps weights sharded outside the forward pass: a fixed thought scale instead of a measured one.
            fsdp = ["trainer=fsdp", "latent.auto_thought_scale=false", "latent.thought_scale=0.1"]
            report["fsdp_training"] = training_smoke(Path(tmp) / "fsdp", fsdp, [devices])
    save()
    print(format_report(report))
    return 0


def format_report(report: dict) -> str:
    b = report["bench"]
    lines = [f"GPU check {report['date']} on {report['gpu'] or report['device']} ({report['gpus']} visible), "
             f"torch {report['torch']}, `make gpu-check`:", "",
             "| figure | value |", "|---|---|",
             f"| latent training tokens/s (bf16) | {b['latent_train_tokens_per_s']:.0f} |",
             f"| train_step_ratio_vs_plain | {b['train_step_ratio_vs_plain']:.3f} |",
             f"| same_calls_step_ratio_vs_plain (the {b['decoder_calls']} decoder calls through transformers' cache) | "
             f"{b['same_calls_step_ratio_vs_plain']:.3f} |",
             f"| train_step_ratio_vs_same_calls | {b['train_step_ratio_vs_same_calls']:.3f} |",
             f"| peak_memory_ratio_vs_plain | {b['peak_memory_ratio_vs_plain']:.3f} |",
             f"| generate_speedup_batched_vs_single | {b['generate_speedup_batched_vs_single']:.1f} |",
             f"| generate_time_ratio_vs_hf (HF generate, same batch and length) | {b['generate_time_ratio_vs_hf']:.3f} |",
             f"| jacobi_step_ratio_vs_sequential ({b['jacobi_iterations']} iterations) | "
             f"{b['jacobi_step_ratio_vs_sequential']:.3f} |"]
    compiled = report.get("compiled")
    if compiled and "error" in compiled:
        lines.append(f"| latent.compile={compiled['compile_mode']} | did not compile: {compiled['error'][:200]} |")
    elif compiled:
        lines += [f"| compiled latent step / plain step (latent.compile={compiled['compile_mode']}) | "
                  f"{compiled['compiled_step_ratio_vs_plain']:.3f} |",
                  f"| compiled_step_ratio_vs_eager | {compiled['compiled_step_ratio_vs_eager']:.3f} |",
                  f"| compile time, first steps (s) | {compiled['compile_warmup_s']:.0f} |",
                  f"| graphs left without CUDA graphs | {compiled['cudagraph_skips']} "
                  f"{'; '.join(compiled['cudagraph_skip_reasons'])[:300]} |"]
    if "cuda_latent_peak_mb" in b:
        lines.append(f"| peak memory, plain / latent step (MiB) | {b['cuda_plain_peak_mb']:.0f} / {b['cuda_latent_peak_mb']:.0f} |")
    for key in ("bf16_training", "fsdp_training"):
        if key in report:
            r = report[key]
            lines.append(f"| tiny curriculum, {r['strategy']} {r['precision']} on {r['devices']} device(s) | "
                         f"{r['seconds']} s, test acc {r['test'].get('test/acc', float('nan')):.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
