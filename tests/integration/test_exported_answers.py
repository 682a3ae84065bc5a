"""A trained run's export answers questions on its own: from a fresh process that imports only `LatentReasoner`, with
the prompt, the generation and the reading of the run's own test."""

import json
import subprocess
import sys

import pytest
import torch

from coconut.experiment import load_config
from coconut.train.run import train
from tests.integration.tiny_run import tiny_overrides

pytestmark = pytest.mark.slow

LEARNED = [{"question": "a b c ? x", "steps": ["a b", "b c"], "answer": "c"},
           {"question": "d e f ? y", "steps": ["d e", "e f"], "answer": "f"}]
UNSEEN = {"question": "d b f ? x", "steps": ["d b", "b f"], "answer": "b"}  # never trained: whatever it writes


@pytest.fixture(scope="module")
def memorised(tmp_path_factory):
    """A tiny COCONUT run that learns two questions by heart (its test: accuracy 1 on them), tested at its final
    stage with one thought."""
    root = tmp_path_factory.mktemp("answers")
    data = root / "qa"
    data.mkdir()
    (data / "train.json").write_text(json.dumps(LEARNED * 128))
    (data / "valid.json").write_text(json.dumps(LEARNED))
    (data / "test.json").write_text(json.dumps(LEARNED + [UNSEEN]))
    cfg = load_config("demo_coconut", tiny_overrides(
        root, "name=memo", "data.generator=null", f"data.train_file={data / 'train.json'}",
        f"data.val_file={data / 'valid.json'}", f"data.test_file={data / 'test.json'}", "data.eval_batch_size=3",
        "method.max_latent_stage=1", "trainer.max_epochs=3", "model.hidden=32", "optim.lr=0.01"))
    return cfg, train(cfg)


def ask_in_a_fresh_process(folder, questions) -> list[dict]:
    snippet = ("import json, sys\n"
               "from coconut import LatentReasoner\n"
               "model = LatentReasoner.from_pretrained(sys.argv[1])\n"
               "print(json.dumps([vars(a) for a in model.answer(json.loads(sys.argv[2]))]))\n")
    out = subprocess.run([sys.executable, "-c", snippet, str(folder), json.dumps(questions)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_export_answers_the_learned_questions_right_from_a_fresh_process(memorised):
    cfg, results = memorised
    questions = [r["question"] for r in LEARNED]
    answers = ask_in_a_fresh_process(cfg.run_dir / "export", questions)
    assert [a["answer"] for a in answers] == ["c", "f"]
    assert [a["thoughts"] for a in answers] == [1, 1], "the final stage's one thought"
    card = (cfg.run_dir / "export" / "README.md").read_text()
    assert f"| accuracy | {results['test']['test/acc']} |" in card, "the card quotes the test's accuracy"


def test_the_export_generates_what_the_runs_test_generated(memorised):
    """Same prompt (the export's tokenizer and format against the test loader's), same text, same token counts."""
    from coconut.engine.answering import tokenizer_of
    from coconut.engine.reasoner import LatentReasoner
    from coconut.train.build import build_system
    from coconut.train.checkpoints import check_checkpoint, load_weights

    cfg, results = memorised
    module, datamodule, tokenizer = build_system(cfg)
    load_weights(module, check_checkpoint(results["checkpoint"]), results["checkpoint"])
    datamodule.setup("test")
    datamodule.freeze_stage(results["test_stage"])
    batch = next(iter(datamodule.eval_loader("test")))
    module.eval()
    with torch.no_grad():
        gen = module.generate(batch["prompt_input_ids"], batch["prompt_attention_mask"])
    texts = tokenizer.batch_decode([s[:n].tolist() for s, n in zip(gen.sequences, gen.num_generated)],
                                   skip_special_tokens=True)

    exported = LatentReasoner.from_pretrained(cfg.run_dir / "export")
    questions = [r["question"] for r in LEARNED + [UNSEEN]]
    for row, question in enumerate(questions):
        prompt = batch["prompt_input_ids"][row][batch["prompt_attention_mask"][row].bool()].tolist()
        assert exported.prompt_format.prompt_ids(tokenizer_of(exported), question) == prompt
    answers = ask_in_a_fresh_process(cfg.run_dir / "export", questions)
    assert [a["text"] for a in answers] == texts
    assert [a["generated_tokens"] for a in answers] == gen.language_tokens(module.engine.eos_id).tolist()
    assert [a["thoughts"] for a in answers] == gen.num_thoughts.tolist()
