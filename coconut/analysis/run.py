"""`coconut analyze EXPERIMENT ckpt=PATH`: the analyses of one checkpoint, written to RUN_DIR/analysis.

    search    forced thoughts k = 0..K (path categories, accuracy) and frontier values (ProsQA data)
    decoding  greedy vs Soft Thinking vs Mixture of Inputs on the checkpoint, same prompts
    stop      a fixed number of thoughts vs the learned stop (models trained with model.stop_classifier)

Each writes numbers into RUN_DIR/analysis/CHECKPOINT/analysis.json, and figures there as PNG files and into
the run's TensorBoard as images (tags analysis/...).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from coconut.config import ConfigError, RunConfig

log = logging.getLogger(__name__)
ANALYSES = ("search", "decoding", "stop")


def analyze(cfg: RunConfig, ckpt: str, what=ANALYSES, questions: int | None = None, split: str = "test",
            prefix: str | None = None, stage: int | None = None) -> dict:
    import torch

    from coconut.analysis.plots import decoding_figure
    from coconut.train.callbacks import write_json
    from coconut.train.checkpoints import check_checkpoint, load_weights
    from coconut.train.run import build_system, checkpoint_stage, prepare_run_dir

    unknown = set(what) - set(ANALYSES)
    if unknown:
        raise ConfigError(f"what={','.join(sorted(unknown))}: unknown analysis; choose from {', '.join(ANALYSES)}")
    state = check_checkpoint(ckpt)
    run_dir = cfg.run_dir if cfg.run_dir.exists() else prepare_run_dir(cfg)
    module, datamodule, tokenizer = build_system(cfg, run_dir)
    load_weights(module, state, ckpt)
    use_gpu = torch.cuda.is_available() and cfg.trainer.accelerator not in ("cpu",)
    module.to("cuda" if use_gpu else "cpu").eval()
    stage = checkpoint_stage(state, cfg) if stage is None else stage
    out_dir = run_dir / "analysis" / Path(ckpt).stem  # one folder per checkpoint analysed
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {"checkpoint": str(ckpt), "stage": stage, "split": split}
    figures = {}
    if "search" in what:
        results["search"], figs = _search(cfg, module, tokenizer, split, questions, prefix)
        figures.update(figs)
    if "decoding" in what or "stop" in what:
        loader = _loader_for(cfg, tokenizer, datamodule, stage, split, questions)
    if "decoding" in what:
        results["decoding"] = _compare(module, loader, _decoding_settings(cfg))
        figures["decoding"] = decoding_figure(results["decoding"], f"{cfg.name}: decoding rules at stage {stage}")
    if "stop" in what:
        if module.engine.stop_head is None:
            log.warning("stop: skipped, the checkpoint has no stop classifier (train with model.stop_classifier=true)")
        else:
            results["stop"] = _compare(module, loader, _stop_settings(cfg))
            if not cfg.method.pad_latent_to_max:
                # The fixed count above is each question's own number of steps, which a model does not
                # know at test time; the paper's fixed setting gives every question the stage's maximum.
                padded = dataclasses.replace(cfg, method=dataclasses.replace(cfg.method, pad_latent_to_max=True))
                results["stop"].insert(1, _compare(module, _loader_for(padded, tokenizer, datamodule, stage, split,
                                                                       questions),
                                                   [("fixed thoughts, all at the maximum", padded)])[0])
            figures["stop"] = decoding_figure(results["stop"], f"{cfg.name}: fixed vs learned number of thoughts")
    # Analyses run earlier on the same checkpoint (another `what=`) stay in the file.
    previous = out_dir / "analysis.json"
    kept = json.loads(previous.read_text()) if previous.exists() else {}
    write_json(previous, {**(kept if kept.get("split") == split and kept.get("stage") == stage else {}), **results})
    _save_figures(figures, out_dir, run_dir)
    results["files"] = sorted(str(p) for p in out_dir.iterdir())
    results["figures"] = [f"analysis/{name}" for name in figures]
    return results


# -- search ---------------------------------------------------------------------------------------


def load_questions(cfg: RunConfig, tokenizer, split: str, limit: int | None):
    from coconut.data.graph import GRAPH_FIELDS, Graph
    from coconut.analysis.search import Question
    from coconut.data.records import DataError, load_records
    from coconut.data.tokenize import as_tokenized_record, tokenize_record
    from coconut.train.datamodule import data_files, text_format

    path = data_files(cfg)[split]
    records = load_records(path)[:limit]
    graphs = []  # every record checked before any is tokenised
    for i, record in enumerate(records):
        try:
            graphs.append(Graph.from_record(record))
        except ValueError as err:
            field = next((f for f in GRAPH_FIELDS if f not in record), None)
            raise DataError(path, i, field, str(err).split(": ", 1)[1] + "; for data without graphs use "
                            "what=decoding,stop") from err
    fmt = text_format(cfg)
    return [Question(r, g, as_tokenized_record(tokenize_record(r, tokenizer, fmt))) for r, g in zip(records, graphs)]


def step_prefix(questions) -> str:
    """The words a step starts with before its source node: "Every" in the released rendering, else nothing."""
    firsts = [q.record["steps"][1].split()[0] for q in questions if len(q.record["steps"]) > 1]
    return "Every" if firsts and all(f == "Every" for f in firsts) else ""


def _search(cfg, module, tokenizer, split, limit, prefix):
    from coconut.analysis import plots
    from coconut.analysis.search import forced_thoughts, frontier_summary, frontier_values
    from coconut.data.curriculum import SpecialIds
    from coconut.train.datamodule import answer_marker

    questions = load_questions(cfg, tokenizer, split, limit)
    ids = SpecialIds.from_tokenizer(tokenizer)
    engine = module.engine
    top = max(1, cfg.method.max_latent_stage * cfg.method.thoughts_per_step)
    batch = cfg.data.eval_batch_size
    marker = answer_marker(cfg)
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


def _decoding_settings(cfg: RunConfig) -> list[tuple[str, RunConfig]]:
    from coconut.config import load_group

    out = []
    for name in ("greedy", "soft_thinking", "mixture_of_inputs"):
        decode = cfg.decode if cfg.decode.name == name else load_group("decode", name)
        out.append((name, dataclasses.replace(cfg, decode=decode)))
    return out


def _stop_settings(cfg: RunConfig) -> list[tuple[str, RunConfig]]:
    return [(f"{thoughts} thoughts", dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, thoughts=thoughts)))
            for thoughts in ("fixed", "learned")]


def _loader_for(cfg: RunConfig, tokenizer, like, stage: int, split: str, questions: int | None):
    """An evaluation loader built under another method config (tokenised data shared through the cache)."""
    from coconut.train.datamodule import CurriculumDataModule

    datamodule = CurriculumDataModule(cfg, tokenizer, max_length=like.max_length)
    datamodule.setup()
    datamodule.eval_stage = stage
    return _limited(datamodule.test_dataloader() if split == "test" else datamodule.val_dataloader(), questions)


def _limited(loader, questions: int | None):
    if questions is None:
        return loader
    from torch.utils.data import DataLoader

    items = list(loader.dataset)[:questions]
    return DataLoader(items, batch_size=loader.batch_size, shuffle=False, collate_fn=loader.collate_fn)


def _compare(module, loader, settings) -> list[dict]:
    """The evaluation metrics of `module` on `loader` under each (label, config)."""
    import torch
    from tqdm.auto import tqdm

    from coconut.train.module import EvalMetrics

    original = module.cfg
    rows = []
    try:
        for label, cfg in settings:
            module.cfg = cfg
            metrics = EvalMetrics().to(module.device)
            with torch.no_grad():
                for batch in tqdm(loader, desc=label, unit="batch"):
                    batch = {k: v.to(module.device) if hasattr(v, "to") else v for k, v in batch.items()}
                    module._evaluate(batch, metrics, keep_samples=False)
            rows.append({"label": label, **{n: round(float(getattr(metrics, n).compute()), 5) for n in metrics.NAMES}})
    finally:
        module.cfg = original
    return rows


def _save_figures(figures: dict, out_dir: Path, run_dir: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir / "tensorboard"))
    try:
        for name, fig in figures.items():
            fig.savefig(out_dir / f"{name}.png", dpi=110)
            writer.add_figure(f"analysis/{name}", fig, close=True)
    finally:
        writer.close()
