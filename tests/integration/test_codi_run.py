"""A tiny CODI run end to end: teacher and student train together (every loss term logged), the student alone
answers at test, and the export (with CODI's projection) answers as the run's test did, from the exported folder."""

import csv
import json

import pytest

from coconut.experiment import load_config
from coconut.train.run import train
from tests.integration.tiny_run import tiny_overrides

pytestmark = pytest.mark.slow

LEARNED = [{"question": "a b c ? x", "steps": ["a b", "b c"], "answer": "c"},
           {"question": "d e f ? y", "steps": ["d e", "e f"], "answer": "f"}]


@pytest.fixture(scope="module")
def codi_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("codi")
    data = root / "qa"
    data.mkdir()
    (data / "train.json").write_text(json.dumps(LEARNED * 128))
    (data / "valid.json").write_text(json.dumps(LEARNED))
    (data / "test.json").write_text(json.dumps(LEARNED))
    cfg = load_config("quickstart", tiny_overrides(
        root, "name=codi", "method=codi", "method.num_latent=2", "data.generator=null", "data.text_format=codi",
        f"data.train_file={data / 'train.json'}", f"data.val_file={data / 'valid.json'}",
        f"data.test_file={data / 'test.json'}", "data.eval_batch_size=2", "latent.projection=true",
        "latent.projection_dim=24", "trainer.max_epochs=8", "model.hidden=32", "optim.lr=0.01", "logger=csv"))
    return cfg, train(cfg)


def test_the_student_learns_the_answers_and_every_term_is_logged(codi_run):
    cfg, results = codi_run
    assert results["test"]["test/acc"] == 1.0
    assert results["test"]["test/thoughts"] == 2.0, "the student's num_latent thoughts"
    rows = list(csv.DictReader(next((cfg.run_dir / "csv").rglob("metrics.csv")).open()))
    logged = {k for r in rows for k, v in r.items() if v}
    assert {"train/loss", "train/student_ce", "train/teacher_ce", "train/distill", "train/distill_layer0"} <= logged
    first = next(float(r["train/teacher_ce"]) for r in rows if r.get("train/teacher_ce"))
    last = [float(r["train/teacher_ce"]) for r in rows if r.get("train/teacher_ce")][-1]
    assert last < first / 4, "the teacher learns the CoT too"


def test_the_export_keeps_codis_projection_and_answers_alike(codi_run):
    from coconut.engine.projection import ThoughtMLP
    from coconut.engine.reasoner import LatentReasoner

    cfg, _ = codi_run
    exported = LatentReasoner.from_pretrained(cfg.run_dir / "export")
    assert isinstance(exported.projection, ThoughtMLP) and exported.projection[1].out_features == 24
    answers = exported.answer([r["question"] for r in LEARNED])
    assert [a.answer for a in answers] == ["c", "f"]
    assert [a.thoughts for a in answers] == [2, 2]


def test_coconut_think_reads_the_students_thoughts(codi_run):
    from coconut.cli.think import think

    cfg, _ = codi_run
    thinking = think(cfg.run_dir, index=1)
    assert len(thinking.thoughts) == 2, "the student's num_latent thoughts, not a curriculum's"
    assert thinking.answer == "f" and thinking.correct
