"""`coconut analyze EXPERIMENT ckpt=PATH`: the analyses of one checkpoint, written to RUN_DIR/analysis.

    search    forced thoughts k = 0..K (path categories, accuracy) and frontier values (ProsQA data)
    decoding  greedy vs Soft Thinking vs Mixture of Inputs on the checkpoint, same prompts
    stop      a fixed number of thoughts vs the learned stop (models trained with latent.stop_classifier)

Each writes numbers into RUN_DIR/analysis/CHECKPOINT/analysis.json, and figures there as PNG files and into
the run's TensorBoard as images (tags analysis/...).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from coconut.atomic import write_with
from coconut.config import ConfigError, RunConfig

log = logging.getLogger(__name__)
ANALYSES = ("search", "decoding", "stop")


def analyze(cfg: RunConfig, ckpt: str, what=ANALYSES, questions: int | None = None, split: str = "test",
            prefix: str | None = None, stage: int | None = None) -> dict:
    from coconut.atomic import write_json
    from coconut.run_dir import RunDir
    from coconut.run_lock import RunLock, command_line
    from coconut.train.checkpoints import check_checkpoint, check_eval_stage
    from coconut.train.hardware import check_single_device
    from coconut.train.run import prepare_run_dir, refuse_release_checkpoint

    unknown = set(what) - set(ANALYSES)
    if unknown:
        raise ConfigError(f"what={','.join(sorted(unknown))}: unknown analysis; choose from {', '.join(ANALYSES)}")
    refuse_release_checkpoint(cfg, "analyze")
    check_eval_stage(cfg, stage)
    check_single_device(cfg)
    state = check_checkpoint(ckpt)
    lock = RunLock(cfg.run_dir, command_line())
    lock.probe()  # refused at once while a run (or another analysis) writes the folder
    results, figures = _analyses(cfg, ckpt, state, what, questions, split, prefix, stage)
    with lock:  # the writes: one writer per run folder
        run_dir = RunDir(cfg.run_dir) if RunDir(cfg.run_dir).config.exists() else prepare_run_dir(cfg)
        out_dir = run_dir.analysis(ckpt)
        out_dir.mkdir(parents=True, exist_ok=True)
        # Analyses run earlier on the same checkpoint (another `what=`) stay in the file.
        previous = out_dir / "analysis.json"
        kept = json.loads(previous.read_text()) if previous.exists() else {}
        same = kept.get("split") == split and kept.get("stage") == results["stage"]
        write_json(previous, {**(kept if same else {}), **results})
        _save_figures(figures, out_dir, run_dir.tensorboard)
    results["files"] = sorted(str(p) for p in out_dir.iterdir())
    results["figures"] = [f"analysis/{name}" for name in figures]
    return results


def _analyses(cfg, ckpt, state, what, questions, split, prefix, stage) -> tuple[dict, dict]:
    """(results, figures) of the analyses asked for, in memory."""
    import torch

    from coconut.analysis.plots import decoding_figure
    from coconut.train.build import build_system
    from coconut.train.checkpoints import checkpoint_stage, load_weights

    module, datamodule, tokenizer = build_system(cfg)
    load_weights(module, state, ckpt, tokenizer)
    use_gpu = torch.cuda.is_available() and cfg.trainer.accelerator not in ("cpu",)
    module.to("cuda" if use_gpu else "cpu").eval()
    stage = checkpoint_stage(state, cfg.trainer.schedule) if stage is None else stage
    results = {"checkpoint": str(ckpt), "stage": stage, "split": split}
    figures = {}
    if "search" in what:
        results["search"], figs = _search(cfg, module, tokenizer, split, questions, prefix)
        figures.update(figs)
    if "decoding" in what or "stop" in what:
        loader = _loader_for(cfg, tokenizer, datamodule.max_length, stage, split, questions)
    if "decoding" in what:
        results["decoding"] = _compare(module, loader, _decoding_settings(module))
        figures["decoding"] = decoding_figure(results["decoding"], f"{cfg.name}: decoding rules at stage {stage}")
    if "stop" in what:
        if module.engine.stop_head is None:
            log.warning("stop: skipped, the checkpoint has no stop head (train with latent.stop_classifier=true)")
        else:
            results["stop"] = _compare(module, loader, _stop_settings(module))
            if not cfg.method.pad_latent_to_max:
                # The fixed count above is each question's own number of steps, which a model does not
                # know at test time; the paper's fixed setting gives every question the stage's maximum.
                padded = dataclasses.replace(cfg, method=dataclasses.replace(cfg.method, pad_latent_to_max=True))
                padded_loader = _loader_for(padded, tokenizer, datamodule.max_length, stage, split, questions)
                fixed = [("fixed thoughts, all at the maximum", dataclasses.replace(module.generation, learned_stop=False))]
                results["stop"].insert(1, _compare(module, padded_loader, fixed)[0])
            figures["stop"] = decoding_figure(results["stop"], f"{cfg.name}: fixed vs learned number of thoughts")
    return results, figures


# -- search ---------------------------------------------------------------------------------------


def load_questions(cfg: RunConfig, tokenizer, split: str, limit: int | None):
    from coconut.data.graph import GRAPH_FIELDS, Graph
    from coconut.analysis.search import Question
    from coconut.data.records import DataError, load_records
    from coconut.data.tokenize import TEXT_FORMATS, as_tokenized_record, tokenize_record

    path = cfg.data.files()[split]
    records = load_records(path)[:limit]
    graphs = []  # every record checked before any is tokenised
    for i, record in enumerate(records):
        try:
            graphs.append(Graph.from_record(record))
        except ValueError as err:
            field = next((f for f in GRAPH_FIELDS if f not in record), None)
            raise DataError(path, i, field, str(err).split(": ", 1)[1] + "; for data without graphs use "
                            "what=decoding,stop") from err
    fmt = TEXT_FORMATS[cfg.data.text_format]
    return [Question(r, g, as_tokenized_record(tokenize_record(r, tokenizer, fmt))) for r, g in zip(records, graphs)]


def step_prefix(questions) -> str:
    """The words a step starts with before its source node: "Every" in the released rendering, else nothing."""
    firsts = [q.record["steps"][1].split()[0] for q in questions if len(q.record["steps"]) > 1]
    return "Every" if firsts and all(f == "Every" for f in firsts) else ""


def _search(cfg, module, tokenizer, split, limit, prefix):
    from coconut.analysis import plots
    from coconut.analysis.search import forced_thoughts, frontier_summary, frontier_values
    from coconut.engine.special_tokens import SpecialIds

    questions = load_questions(cfg, tokenizer, split, limit)
    ids = SpecialIds.from_tokenizer(tokenizer)
    engine = module.engine
    top = max(1, cfg.method.max_thoughts)
    batch = cfg.data.eval_batch_size
    marker = module.generation.answer_marker
    forced = forced_thoughts(engine, tokenizer, questions, range(top + 1), ids, marker, batch, cfg.eval.max_new_tokens,
                             eot_at_stage0=cfg.method.eot_at_stage0)
    prefix = step_prefix(questions) if prefix is None else prefix
    ks = list(range(1, top + 1))
    values = frontier_values(engine, tokenizer, questions, ks, ids, prefix, batch)
    summary = frontier_summary(questions, ks, values)
    shown = ks[:2]
    # A question whose path goes on after the shown thoughts, with a choice at the first step.
    wanted = [i for i, q in enumerate(questions) if len(q.graph.frontier(1)) >= 2]
    case = next((i for i in wanted if len(questions[i].record.get("steps", ())) > len(shown)), wanted[0] if wanted else 0)
    case_values = {k: values[case][j] for j, k in enumerate(shown)}
    graph = questions[case].graph
    figures = {
        "forced_thoughts": plots.forced_thoughts_figure(forced, f"{cfg.name}: accuracy with k forced thoughts"),
        "frontier_values": plots.frontier_figure(summary),
        "case_study": plots.case_figure(graph, case_values, f"question {case}: {questions[case].record['question'][:120]}"),
    }
    result = {
        "questions": len(questions), "prefix": prefix,
        "forced_thoughts": [{k: v for k, v in r.items() if k != "per_question"} for r in forced],
        "per_question_categories": {r["k"]: r["per_question"] for r in forced},
        "frontier": {k: v for k, v in summary.items() if k != "points"},
        "frontier_points": summary["points"],
        "case_study": {"question": case, "names": graph.names, "edges": graph.edges, "root": graph.root,
                       "target": graph.target, "values": {k: {graph.names[v]: p for v, p in vals.items()}
                                                          for k, vals in case_values.items()}},
    }
    return result, figures


# -- decoding and stopping ------------------------------------------------------------------------


def _decoding_settings(module) -> list[tuple[str, object]]:
    """The module's generation settings under each decoding rule (the config's own parameters for its rule)."""
    from coconut.experiment import load_group

    base = module.generation
    return [(name, dataclasses.replace(base, decode=base.decode if base.decode.name == name else load_group("decode", name)))
            for name in ("greedy", "soft_thinking", "mixture_of_inputs")]


def _stop_settings(module) -> list[tuple[str, object]]:
    return [(f"{kind} thoughts", dataclasses.replace(module.generation, learned_stop=kind == "learned"))
            for kind in ("fixed", "learned")]


def _loader_for(cfg: RunConfig, tokenizer, max_length, stage: int, split: str, questions: int | None):
    """An evaluation loader at `stage` under `cfg`'s method (tokenised data shared through the cache)."""
    from coconut.train.build import build_datamodule

    datamodule = build_datamodule(cfg, tokenizer, max_length, stage=stage)
    datamodule.setup()
    name = "test" if split == "test" and "test" in datamodule.splits else "val"  # as test_dataloader falls back
    return datamodule.eval_loader(name, questions)


def _compare(module, loader, settings) -> list[dict]:
    """The evaluation metrics of `module` on `loader` under each (label, generation settings)."""
    import torch
    from tqdm.auto import tqdm

    from coconut.train.metrics import EvalMetrics

    rows = []
    for label, generation in settings:
        metrics = EvalMetrics().to(module.device)
        with torch.no_grad():
            for batch in tqdm(loader, desc=label, unit="batch"):
                batch = {k: v.to(module.device) if hasattr(v, "to") else v for k, v in batch.items()}
                module.score_batch(batch, metrics, generation)
        rows.append({"label": label, **metrics.values()})
    return rows


def _save_figures(figures: dict, out_dir: Path, tensorboard_dir: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tensorboard_dir))
    try:
        for name, fig in figures.items():
            write_with(out_dir / f"{name}.png", lambda out, fig=fig: fig.savefig(out, dpi=110, format="png"))
            writer.add_figure(f"analysis/{name}", fig, close=True)
    finally:
        writer.close()
