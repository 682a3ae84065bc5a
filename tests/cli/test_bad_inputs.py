"""Bad inputs through the real `coconut` command, each refused with one clear line.

Every case runs `python -m coconut ...` in a fresh process (cwd: a scratch folder holding tiny data, a finished
run folder, broken checkpoints and data files) and asserts
- the exit code (2: usage, config, data, checkpoint, model/tokenizer or I/O error);
- exactly one line on stderr, no traceback, naming the culprit (the key, file, record or tensor);
- that no file under the scratch folder changed, appeared or vanished (sha256 of every file before and after):
  a refused run leaves the run folders, the data and the checkpoints as they were.

Progress bars draw on stderr; the cases turn them off (TQDM_DISABLE, HF_DATASETS_DISABLE_PROGRESS_BARS) so that
stderr holds the failure alone. HF_HUB_OFFLINE=1: a missing model fails at once instead of retrying the network.
Cases that need torch cost a few seconds each, so most cases fail at parse time or with --dry-run (config only).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TQDM_DISABLE": "1",
       "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
# A tiny COCONUT run on the scratch folder's data (64/24/24 prosqa-mini records): the cases that get as far as
# building the data, tokenizer and model stay quick.
TINY = ["output_dir=runs", "data.data_dir=data", "model.layers=1", "model.hidden=16", "model.heads=2",
        "model.intermediate=32", "model.max_positions=128", "data.train_size=64", "data.val_size=24",
        "data.test_size=24", "data.batch_size=16", "data.eval_batch_size=12", "method.max_latent_stage=2",
        "trainer.max_epochs=4", "trainer.epochs_per_stage=1", "trainer.first_stage_epochs=null",
        "trainer.progress_bar=false", "eval.max_new_tokens=12",
        "model.init_from=null", "trainer.start_epoch=0", "data.render=null",
        "method.uniform_prob=0.0"]  # the curriculum from scratch, without stage mixing
# The tensor the shape-mismatched checkpoint holds with another shape (the tiny Llama's embedding table).
EMBEDDING = "engine.model.model.embed_tokens.weight"


def coconut(args: list[str], cwd: Path, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coconut", *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def snapshot(root: Path) -> dict[str, str]:
    """Every file (sha256) and folder under root; the data module's datasets cache (data/.cache) is left out."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[:2] == ("data", ".cache"):
            continue
        if path.is_symlink():  # the broken links of the data cases: the link itself, not what it leads to
            found[str(rel)] = f"link to {os.readlink(path)}"
            continue
        found[str(rel)] = "folder" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """The scratch folder every case runs in."""
    root = tmp_path_factory.mktemp("bad_inputs")
    from coconut.data.generators import generate
    from coconut.data.records import write_records
    from coconut.experiment import load_config, to_yaml

    (root / "data").mkdir()
    for offset, (split, n) in enumerate((("train", 64), ("val", 24), ("test", 24))):
        write_records(generate("prosqa-mini", n, offset), root / "data" / f"{split}.json")
    # A finished run: its config, a last checkpoint (not a readable one: resuming it must fail) and its results.
    done = root / "runs" / "done"
    (done / "checkpoints").mkdir(parents=True)
    (done / "config.yaml").write_text(to_yaml(load_config("demo_coconut", TINY + ["name=done"])))
    (done / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04 a truncated zip")
    (done / "results.json").write_text(json.dumps({"name": "done", "method": "coconut",
                                                  "test": {"test/acc": 0.5, "test/tokens": 4.0}}))
    # A folder holding one broken run only (its config.yaml is not YAML).
    broken = root / "broken_runs" / "r1"
    broken.mkdir(parents=True)
    (broken / "config.yaml").write_text("model: [unclosed\n")
    (broken / "results.json").write_text(json.dumps({"test": {"test/acc": 0.5, "test/tokens": 4.0}}))
    ckpts = root / "ckpts"
    ckpts.mkdir()
    (ckpts / "empty.ckpt").write_bytes(b"")
    (ckpts / "garbage.ckpt").write_bytes(b"\x00 not a checkpoint at all \xff")
    import torch

    torch.save({"state_dict": {EMBEDDING: torch.zeros(7, 3)}, "epoch": 0, "global_step": 0}, ckpts / "mismatch.ckpt")
    bad = root / "bad"
    bad.mkdir()
    (bad / "nonutf8.json").write_bytes(b'[{"question": "caf\xe9", "steps": [], "answer": "a"}]')
    (bad / "empty.json").write_text("[]")
    record = generate("prosqa-mini", 1, 0)[0]
    (bad / "latent.json").write_text(json.dumps([{**record, "question": record["question"] + " <|latent|>"}]))
    (bad / "list.yaml").write_text("- model: gpt2\n- method: coconut\n")
    (bad / "hydra.yaml").write_text("defaults:\n  - model: gpt2\n  - method: coconut\n")
    (bad / "empty.yaml").write_text("")
    (bad / "comments.yaml").write_text("# an experiment that sets nothing\n\n# (only comments)\n")
    (root / "a_file").write_text("a file where a folder is expected\n")
    _save_tokenizers(root)
    _save_spoiled_checkpoints_and_results(root)
    _write_bad_data(root, record)
    return root


def _write_bad_data(root: Path, record: dict) -> None:
    """Data identity and record checks: records whose metadata is deep or mistyped, text the format or the
    tokenizer reserves, and broken links (in links/, apart from bad/, whose names every split looks for)."""
    bad = root / "bad"
    text_only = {k: record[k] for k in ("question", "steps", "answer")}

    def write(name: str, *records: dict) -> None:
        (bad / name).write_text(json.dumps([record, *records]))

    write("root_not_int.json", {**record, "root": str(record["root"])})
    write("edges_not_pairs.json", {**record, "edges": [[0, 1, 2]]})
    write("symbols_not_list.json", {**record, "idx_to_symbol": 7})
    write("neg_target_past_nodes.json", {**record, "neg_target": 99})
    write("question_number.json", {**record, "question": 5})
    write("steps_string.json", {**record, "steps": "p1 c2 ;"})
    write("marker_mistyped.json", {**record, "generated": "yes"})
    write("answer_holds_mark.json", {**text_only, "answer": "c4 = c4"})
    write("eos_in_question.json", {**text_only, "question": record["question"] + " <eos>"})
    (bad / "deep_meta.json").write_text(json.dumps([record, {**record, "meta": "X"}]).replace('"X"', "[" * 100 + "]" * 100))
    (bad / "deep_json.json").write_text(json.dumps([record]).replace("}]", ', "meta": ' + "[" * 50_000 + "]" * 50_000 + "}]"))
    links = root / "links"
    links.mkdir()
    (links / "dangling.json").symlink_to(root / "no_such" / "train.json")
    (links / "loop_a.json").symlink_to(links / "loop_b.json")
    (links / "loop_b.json").symlink_to(links / "loop_a.json")
    (links / "gone_dir").symlink_to(root / "no_such_dir")


def _save_tokenizers(root: Path) -> None:
    """A tokenizer without EOS, and a tiny local 'pretrained' model with a word tokenizer of the data."""
    from tokenizers import Tokenizer, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from coconut.data.records import load_records
    from coconut.data.word_tokenizer import build_word_tokenizer

    core = Tokenizer(models.WordLevel({"<pad>": 0, "<unk>": 1, "a": 2}, unk_token="<unk>"))
    PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>").save_pretrained(root / "noeos")
    tokenizer = build_word_tokenizer(load_records(root / "data" / "train.json"), ["= "])
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=128,
                                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    model.save_pretrained(root / "local_lm")
    tokenizer.save_pretrained(root / "local_lm")


def _save_spoiled_checkpoints_and_results(root: Path) -> None:
    """Checkpoints of the finished run's model that read and fit but hold what no training writes (unchecked, NaN
    weights evaluated to accuracy 0.0 with exit 0), and a run whose results.json holds an impossible figure."""
    import torch

    from coconut.experiment import load_config
    from coconut.train.build import build_system

    cfg = load_config("demo_coconut", [*TINY, "name=done", f"output_dir={root / 'runs'}",
                                       f"data.data_dir={root / 'data'}"])
    weights = {key: value.clone() for key, value in build_system(cfg)[0].state_dict().items()}
    spoiled = weights[EMBEDDING].clone()
    spoiled[0, 0], spoiled[4, 1] = float("nan"), float("inf")
    for name, fields in (("stage_word.ckpt", {"curriculum_stage": "two"}),
                         ("not_tensor.ckpt", {"state_dict": {**weights, EMBEDDING: spoiled.tolist()}}),
                         ("nan.ckpt", {"state_dict": {**weights, EMBEDDING: spoiled}})):
        torch.save({"state_dict": weights, "epoch": 3, "curriculum_stage": 3, **fields}, root / "ckpts" / name)
    run = root / "impossible_runs" / "r1"
    run.mkdir(parents=True)
    (run / "config.yaml").write_bytes((root / "runs" / "done" / "config.yaml").read_bytes())
    (run / "results.json").write_text(json.dumps({"test": {"test/acc": 7.5, "test/tokens": 4.0}}))


@dataclass
class Case:
    id: str
    args: list[str]
    culprit: str  # a substring of the one line: the key, file, record or tensor to blame
    code: int = 2


def dry(*overrides: str) -> list[str]:
    """A config-only case: --dry-run would print the config and exit 0 if the check were missing."""
    return ["train", "demo_coconut", *TINY, *overrides, "--dry-run"]


def train(*overrides: str) -> list[str]:
    return ["train", "demo_coconut", *TINY, *overrides]


def evaluate(*options: str) -> list[str]:
    return ["eval", "demo_coconut", *TINY, "name=done", *options]


CASES = [
    # Typed command options, refused when parsing.
    Case("stage-not-int", evaluate("ckpt=ckpts/garbage.ckpt", "stage=abc"), "stage=abc"),
    Case("stage-negative", evaluate("ckpt=ckpts/garbage.ckpt", "stage=-3"), "stage=-3"),
    Case("split-unknown", evaluate("ckpt=ckpts/garbage.ckpt", "split=bogus"), "split=bogus"),
    Case("questions-not-int", ["analyze", "demo_coconut", "ckpt=ckpts/garbage.ckpt", "questions=abc"], "questions=abc"),
    Case("questions-zero", ["analyze", "demo_coconut", "ckpt=ckpts/garbage.ckpt", "questions=0"], "questions=0"),
    Case("what-unknown", ["analyze", "demo_coconut", "ckpt=ckpts/garbage.ckpt", "what=search,magic"], "magic"),
    Case("ckpt-missing", evaluate("ckpt=ckpts/nope.ckpt"), "ckpts/nope.ckpt"),
    Case("ckpt-required", evaluate(), "ckpt=PATH"),
    Case("resume-is-a-folder", train("name=done", "resume=runs/done"), "resume=runs/done"),
    Case("overwrite-not-bool", train("overwrite=maybe"), "overwrite=maybe"),
    Case("option-of-another-command", train("stage=1"), "stage="),
    Case("unknown-flag", train("--fast"), "--fast"),
    Case("unknown-experiment", ["train", "no_such_experiment", "--dry-run"], "no_such_experiment"),
    # The schema refuses what cannot work, naming the key.
    Case("lr-infinite", dry("optim.lr=1e400"), "optim.lr"),
    Case("lr-negative", dry("optim.lr=-1"), "optim.lr"),
    Case("lr-not-a-number", dry("optim.lr=fast"), "optim.lr"),
    Case("accumulation-zero", dry("trainer.accumulate_grad_batches=0"), "trainer.accumulate_grad_batches"),
    Case("max-new-tokens-negative", dry("eval.max_new_tokens=-1"), "eval.max_new_tokens"),
    Case("max-epochs-infinite", dry("trainer.max_epochs=-1"), "trainer.max_epochs"),
    Case("max-epochs-zero", dry("trainer.max_epochs=0"), "trainer.max_epochs"),
    Case("precision-unknown", dry("trainer.precision=bogus"), "trainer.precision"),
    Case("devices-word", dry("trainer.devices=abc"), "trainer.devices"),
    Case("thoughts-zero", dry("method.thoughts_per_step=0"), "method.thoughts_per_step"),
    Case("lora-rank-negative", dry("model.lora_rank=-1"), "model.lora_rank"),
    Case("stop-threshold-above-one", dry("eval.stop_threshold=7"), "eval.stop_threshold"),
    Case("train-size-negative", dry("data.train_size=-5"), "data.train_size"),
    # Stage-transition diagnostics (coconut.train.transitions).
    Case("transition-questions-negative", dry("eval.transition_questions=-3"), "eval.transition_questions"),
    Case("transition-entry-not-bool", dry("eval.transition_entry=maybe"), "eval.transition_entry"),
    Case("name-outside-output-dir", dry("name=../../x"), "name="),
    Case("experiment-is-a-list", ["train", "bad/list.yaml", "--dry-run"], "list.yaml"),
    Case("experiment-hydra-defaults", ["train", "bad/hydra.yaml", "--dry-run"], "defaults"),
    # Bench arguments.
    Case("bench-arch", ["bench", "--arch", "foo"], "--arch"),
    Case("bench-precision", ["bench", "--precision", "fp8"], "--precision"),
    Case("bench-width-heads", ["bench", "--width", "30", "--heads", "4"], "--width 30"),
    Case("bench-batch-zero", ["bench", "--batch", "0"], "--batch"),
    Case("bench-vocab-tiny", ["bench", "--vocab", "3"], "--vocab"),
    Case("bench-layers-zero", ["bench", "--layers", "0"], "--layers"),
    # Data commands.
    Case("data-absurd-n", ["data", "prosqa", "--n", "100000000000000000000", "--out", "x.json"], "--n"),
    Case("data-zero-n", ["data", "prosqa-mini", "--n", "0", "--out", "x.json"], "--n"),
    Case("data-out-unwritable", ["data", "prosqa-mini", "--n", "3", "--out", "a_file/x.json"], "a_file"),
    Case("data-out-suffix", ["data", "prosqa-mini", "--n", "3", "--out", "x.csv"], "x.csv"),
    Case("data-stats-not-utf8", ["data", "stats", "bad/nonutf8.json"], "nonutf8.json"),
    Case("data-stats-no-records", ["data", "stats", "bad/empty.json"], "empty.json"),
    Case("data-stats-missing", ["data", "stats", "bad/nope.json"], "nope.json"),
    Case("latent-token-in-a-record", ["data", "convert", "bad/latent.json", "out.jsonl"], "latent.json"),
    Case("data-download-timeout", ["data", "download", "prosqa", "--timeout", "0"], "--timeout"),
    # Report.
    Case("report-out-unwritable", ["report", "runs/done", "--out", "a_file/report"], "a_file"),
    Case("report-only-broken-runs", ["report", "broken_runs", "--out", "report"], "config.yaml"),
    Case("report-missing-folder", ["report", "no_such_runs", "--out", "report"], "no_such_runs"),
    # Runs: the folder, checkpoints, data, tokenizer and model (these build the run's parts: a few seconds each).
    Case("second-run-into-finished-folder", train("name=done"), "overwrite=true"),
    Case("failed-resume-keeps-config", train("name=done", "resume=runs/done/checkpoints/last.ckpt",
                                             "resume_finished=true"), "last.ckpt"),
    # The run folder as a transaction: what a run may do to a folder that holds one, and to folders it did not make.
    Case("resume-a-finished-run-unasked", train("name=done", "resume=runs/done/checkpoints/last.ckpt"),
         "resume_finished=true"),
    Case("resume-another-runs-checkpoint", train("name=done", "resume=ckpts/garbage.ckpt"), "resume_other_run=true"),
    Case("resume-other-run-into-a-run", train("name=done", "resume=ckpts/garbage.ckpt", "resume_other_run=true"),
         "choose another name="),
    Case("overwrite-a-folder-coconut-did-not-make", train("output_dir=.", "name=bad", "overwrite=true"),
         "only a run folder coconut made"),
    Case("permission-option-not-bool", train("resume_finished=yes"), "resume_finished=yes"),
    Case("ckpt-zero-bytes", evaluate("ckpt=ckpts/empty.ckpt"), "empty.ckpt"),
    Case("ckpt-not-a-checkpoint", evaluate("ckpt=ckpts/garbage.ckpt"), "garbage.ckpt"),
    Case("ckpt-other-shape", evaluate("ckpt=ckpts/mismatch.ckpt"), EMBEDDING),
    Case("model-missing-offline", train("model.name_or_path=no-such-org/no-such-model"), "no-such-org/no-such-model"),
    Case("tokenizer-missing-offline", train("data.tokenizer=no-such-org/no-such-tokenizer"), "no-such-tokenizer"),
    Case("tokenizer-without-eos", train("data.tokenizer=noeos"), "EOS"),
    Case("init-token-not-one-token", train("model.name_or_path=local_lm", "data.tokenizer=model",
                                           "model.init_token=zebra"), "init_token 'zebra'"),
    Case("data-dir-unwritable", train("data.data_dir=a_file/data"), "a_file"),
    Case("output-dir-unwritable", train("output_dir=a_file/runs"), "a_file"),
    Case("nothing-to-train", train("data.batch_size=128", "data.drop_last=true"), "data.batch_size"),
    # Report, eval stage and checkpoint contents: what would evaluate the wrong thing, or trip later with a bug line.
    Case("eval-stage-beyond-final", evaluate("ckpt=ckpts/garbage.ckpt", "stage=99"),
         "stage=99: beyond the final stage of method coconut (3,"),
    Case("analyze-stage-beyond-final", ["analyze", "demo_coconut", *TINY, "ckpt=ckpts/garbage.ckpt", "stage=4"],
         "stage=4: beyond the final stage"),
    Case("ckpt-stage-not-int", evaluate("ckpt=ckpts/stage_word.ckpt"), "curriculum_stage is 'two'"),
    Case("ckpt-state-not-tensor", evaluate("ckpt=ckpts/not_tensor.ckpt"), f"state_dict['{EMBEDDING}'] is a list"),
    Case("ckpt-weights-not-finite", evaluate("ckpt=ckpts/nan.ckpt"), f"{EMBEDDING} holds 2 non-finite value(s)"),
    Case("resume-weights-not-finite", train("name=fresh", "resume=ckpts/nan.ckpt", "resume_other_run=true"),
         "nan.ckpt: "),
    Case("report-accuracy-above-one", ["report", "impossible_runs", "--out", "report"], "'test/acc' is 7.5"),
    # Settings Lightning or this machine cannot run, bench shapes that cannot be allocated, malformed command
    # options, empty experiments (coconut.config, coconut.train.hardware, coconut.bench.settings, coconut.cli).
    Case("seed-negative", dry("seed=-1"), "seed=-1"),
    Case("seed-above-32-bits", dry("seed=4294967296"), "seed=4294967296"),
    Case("accelerator-unknown", dry("trainer.accelerator=quantum"), "trainer.accelerator='quantum'"),
    Case("strategy-unknown", dry("trainer.strategy=bogus"), "trainer.strategy='bogus'"),
    Case("strategy-lightning-only", dry("trainer.strategy=deepspeed"), "trainer.strategy='deepspeed'"),
    Case("experiment-file-empty", ["train", "bad/empty.yaml", "--dry-run"], "empty.yaml"),
    Case("experiment-file-only-comments", ["train", "bad/comments.yaml", "--dry-run"], "comments.yaml"),
    Case("experiment-name-empty", ["train", "", "--dry-run"], "experiment ''"),
    Case("accelerator-tpu-absent", train("trainer.accelerator=tpu"), "trainer.accelerator=tpu"),
    Case("precision-16-mixed-on-cpu", train("trainer=cpu", "trainer.precision=16-mixed"), "trainer.precision=16-mixed"),
    Case("precision-16-true-on-cpu", train("trainer=cpu", "trainer.precision=16-true"), "trainer.precision=16-true"),
    Case("precision-transformer-engine-on-cpu", train("trainer=cpu", "trainer.precision=transformer-engine"),
         "trainer.precision=transformer-engine"),
    Case("num-nodes-without-launcher", train("trainer=cpu", "trainer.num_nodes=2"), "trainer.num_nodes=2"),
    Case("bench-vocab-huge", ["bench", "--vocab", "1000000000000"], "--vocab 1,000,000,000,000"),
    Case("bench-width-beyond-memory", ["bench", "--width", "65536", "--heads", "4"], "--width 65,536"),
    Case("bench-sequence-beyond-memory", ["bench", "--question", "1000000000"], "--question"),
    Case("bench-seed-negative", ["bench", "--seed", "-1"], "--seed"),
    Case("bench-fsdp-ranks-too-many", ["bench", "--fsdp-ranks", "1000"], "--fsdp-ranks"),
    Case("data-download-base-url-malformed", ["data", "download", "prosqa", "--base-url", "not a url"], "--base-url"),
    Case("data-download-base-url-no-host", ["data", "download", "prosqa", "--base-url", "https://"], "--base-url"),
    # Lightning's own knobs and loggers: steps, dev runs, validation within an epoch, profiler, logger=, the
    # effective batch (coconut.config.training, coconut.config.loggers, coconut.train.run.check_steps, dev_run).
    Case("max-steps-zero", dry("trainer.max_steps=0"), "trainer.max_steps"),
    Case("fast-dev-run-negative", dry("trainer.fast_dev_run=-1"), "trainer.fast_dev_run"),
    Case("fast-dev-run-with-resume", train("name=done", "trainer.fast_dev_run=true",
                                           "resume=runs/done/checkpoints/last.ckpt"), "trainer.fast_dev_run"),
    Case("val-check-interval-fraction-above-one", dry("trainer.val_check_interval=1.5"), "trainer.val_check_interval"),
    Case("val-check-interval-beyond-the-epoch", train("trainer.val_check_interval=50"),
         "trainer.val_check_interval=50 is more than the 4 training batches"),
    Case("limit-test-batches-zero", dry("trainer.limit_test_batches=0"), "trainer.limit_test_batches"),
    Case("profiler-unknown", dry("trainer.profiler=fancy"), "trainer.profiler='fancy'"),
    Case("logger-unknown", dry("logger=tensorboard,neptune"), "unknown logger neptune"),
    *([Case("logger-wandb-not-installed", train("logger=csv,wandb"), "pip install 'coconut-latent[wandb]'")]
      if importlib.util.find_spec("wandb") is None else []),
    Case("effective-batch-no-exact-split", dry("trainer.devices=8", "trainer.effective_batch=100"),
         "trainer.effective_batch=100 cannot be shared equally"),
    # Data identity and record checks: metadata, reserved text, broken links, generated data where released is due.
    *[Case(f"data-stats-{name.replace('_', '-')}", ["data", "stats", f"bad/{name}.json"], culprit) for name, culprit in (
        ("deep_json", "deep_json.json: the file holds JSON nested too deeply"),
        ("deep_meta", "record 1: field 'meta'"),
        ("root_not_int", "record 1: field 'root'"),
        ("edges_not_pairs", "record 1: field 'edges[0]'"),
        ("symbols_not_list", "record 1: field 'idx_to_symbol'"),
        ("neg_target_past_nodes", "record 1: field 'neg_target'"),
        ("question_number", "record 1: field 'question'"),
        ("steps_string", "record 1: field 'steps'"),
        ("marker_mistyped", "record 1: field 'generated'"),
    )],
    Case("data-stats-dangling-link", ["data", "stats", "links/dangling.json"], "no_such/train.json, which does not"),
    Case("data-stats-link-loop", ["data", "stats", "links/loop_a.json"], "loop_a.json: is a symbolic link to"),
    Case("data-generate-at-a-released-name", ["data", "prosqa-mini", "--n", "3", "--out", "data/prosqa_train.json"],
         "--out data/prosqa_train.json"),
    *[Case(f"train-{name.replace('_', '-')}", train("data.generator=null", f"data.train_file=bad/{name}.json",
                                                    "data.val_file=data/val.json", "data.test_file=data/test.json"),
           culprit) for name, culprit in (
        ("deep_meta", "record 1: field 'meta'"),
        ("root_not_int", "record 1: field 'root'"),
        ("answer_holds_mark", "answer_holds_mark.json: record 1: field 'answer': contains '='"),
        ("eos_in_question", "eos_in_question.json: record 1: field 'question': contains <eos>"),
    )],
    Case("train-dangling-link", train("data.train_file=links/dangling.json", "data.val_file=data/val.json"),
         "links/dangling.json: is a symbolic link to"),
    Case("train-link-loop", train("data.val_file=links/loop_a.json"), "that loops"),
    Case("train-data-dir-dangling", train("data.data_dir=links/gone_dir"), "links/gone_dir: is a symbolic link"),
    Case("train-generate-at-a-released-name", train("data.train_file=fresh/prosqa_train.json"),
         "prosqa_train.json is a released file's name"),
    Case("train-generated-data-where-released-is-due", train("data.allow_generated=false"),
         "data/train.json: record 0: field 'generated': marks the file as generated data"),
    # Run folders in place of an experiment (coconut eval/analyze RUN_DIR) and the quick start's folder: a path
    # that is no run, a run without checkpoints or with a broken config, a checkpoint name it lacks.
    Case("eval-folder-not-a-run", ["eval", "bad"], "bad: not a run folder (no config.yaml)"),
    Case("eval-run-folder-missing", ["eval", "runs/nope"], "runs/nope: no such run folder"),
    Case("eval-run-folder-is-a-file", ["eval", "./a_file"], "./a_file: is a file, not a run folder"),
    Case("analyze-folder-not-a-run", ["analyze", "ckpts", "what=decoding"], "ckpts: not a run folder"),
    Case("eval-run-folder-config-broken", ["eval", "broken_runs/r1"], "config.yaml: not valid YAML"),
    Case("eval-run-folder-without-checkpoints", ["eval", "impossible_runs/r1"], "no best.ckpt or last.ckpt"),
    Case("eval-run-folder-default-checkpoint-unreadable", ["eval", "runs/done"], "last.ckpt"),
    Case("eval-run-folder-checkpoint-name-missing", ["eval", "runs/done", "ckpt=stage9"], "ckpt=stage9: no "),
    Case("eval-run-folder-name-overridden", ["eval", "runs/done", "name=other"], "name=other: a run folder's name"),
    Case("quickstart-into-a-finished-run", ["quickstart", "output_dir=runs", "name=done"],
         "quickstart overwrite=true"),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_bad_input_is_one_clear_line(world, case):
    before = snapshot(world)
    out = coconut(case.args, world)
    lines = out.stderr.splitlines()
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{out.stderr[-3000:]}"
    assert case.culprit in lines[0], f"the line does not name {case.culprit!r}: {lines[0]}"
    assert lines[0].startswith("coconut "), lines[0]
    assert out.returncode == case.code, f"exit {out.returncode}, expected {case.code}: {lines[0]}"
    assert snapshot(world) == before, "a refused command changed files under its folder"


def test_the_table_holds_the_issues_cases():
    """At least 40 bad inputs, each a distinct case."""
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


# The error path itself: --debug, the exit codes in --help, --version, the typed options reaching the commands.


def test_debug_shows_the_traceback_then_the_same_line(tmp_path):
    for argv in (["--debug", "train", "demo_coconut", "optim.lr=-1", "--dry-run"],
                 ["train", "demo_coconut", "--dry-run", "optim.lr=-1", "--debug"]):  # --debug anywhere
        out = coconut(argv, tmp_path)
        assert out.returncode == 2
        assert "Traceback (most recent call last)" in out.stderr and "ValueError: optim.lr must be" in out.stderr
        assert out.stderr.splitlines()[-1].startswith("coconut train: config in demo_coconut: optim.lr must be")
    assert list(tmp_path.iterdir()) == []


def test_help_lists_the_exit_codes_and_version_matches_the_package(tmp_path):
    import coconut as package
    from coconut.cli.main import package_version

    out = coconut(["--help"], tmp_path)
    assert out.returncode == 0
    for code, meaning in (("0", "success"), ("1", "unexpected failure"), ("2", "usage, config, data, checkpoint"),
                          ("3", "training stopped on a non-finite loss")):
        assert f"  {code}  {meaning}" in out.stdout, f"exit code {code} is not explained in --help"
    version = coconut(["--version"], tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"coconut {package_version()}"
    assert version.stdout.split()[1] == package.__version__, "the installed metadata and __version__ agree"


def test_version_without_installed_metadata_is_the_packages_own(monkeypatch):
    """A clone used without installing it (or a distribution of the other PyPI `coconut`) reads __version__."""
    from importlib import metadata

    import coconut
    from coconut.cli.main import package_version

    monkeypatch.setattr(metadata, "packages_distributions", lambda: {"coconut": ["coconut"]})
    monkeypatch.setattr(metadata, "distribution", lambda name: type("D", (), {"entry_points": []})())
    assert package_version() == coconut.__version__


def test_flags_and_overrides_in_any_order(capsys):
    from coconut.cli.main import main

    assert main(["train", "demo_coconut", "--dry-run", "optim.lr=0.5", "trainer.devices=2"]) == 0
    out = capsys.readouterr().out
    assert "lr: 0.5" in out and "devices: 2" in out
    # A later override of the same key wins, whichever side of the flag it stands on.
    assert main(["train", "demo_coconut", "optim.lr=0.5", "--dry-run", "optim.lr=0.25"]) == 0
    assert "lr: 0.25" in capsys.readouterr().out


def test_typed_options_reach_the_commands(tmp_path, monkeypatch):
    """stage as an int, split as chosen, overwrite as a bool, resume as the path: what the commands receive."""
    import coconut.train.run as run
    from coconut.cli.main import main

    ckpt = tmp_path / "x.ckpt"
    ckpt.write_bytes(b"not empty")
    seen = {}
    monkeypatch.setattr(run, "evaluate", lambda cfg, path, stage=None, split="test": seen.update(
        eval=(path, stage, split)) or {"stage": stage})
    monkeypatch.setattr(run, "train", lambda cfg, resume=None, overwrite=False, **permissions: seen.update(
        train=(resume, overwrite, permissions)) or {"run_dir": "r", "test": {}})
    common = [f"output_dir={tmp_path / 'runs'}", f"data.data_dir={tmp_path / 'data'}"]
    assert main(["eval", "demo_coconut", f"ckpt={ckpt}", "split=val", *common, "stage=2"]) == 0
    assert seen["eval"] == (str(ckpt), 2, "val")
    assert main(["train", "demo_coconut", *common, "overwrite=true"]) == 0
    assert seen["train"] == (None, True, {})
    assert main(["train", "demo_coconut", *common, f"resume={ckpt}", "overwrite=false", "resume_other_run=true"]) == 0
    assert seen["train"] == (str(ckpt), False, {"resume_other_run": True})

    import coconut.cli.demo as demo

    monkeypatch.setattr(demo, "run_demo", lambda overrides, overwrite=False, seeds=(): seen.update(demo=seeds))
    assert main(["demo", *common]) == 0
    assert seen["demo"] == (0, 1, 2), "three seeds unless told: one seed's order is not a result"
    assert main(["demo", *common, "seeds=4"]) == 0 and seen["demo"] == (4,)


def test_exit_codes_of_unexpected_failures_and_non_finite_losses(tmp_path, monkeypatch, capsys):
    import coconut.train.run as run
    from coconut.cli.main import main
    from coconut.train.module import NonFiniteLossError

    def stops(*args, **kwargs):
        raise NonFiniteLossError("loss is nan at step 3; lower optim.lr")

    def breaks(*args, **kwargs):
        return 1 / 0

    common = ["train", "demo_coconut", f"output_dir={tmp_path / 'runs'}", f"data.data_dir={tmp_path / 'data'}"]
    monkeypatch.setattr(run, "train", stops)
    assert main(common) == 3
    assert capsys.readouterr().err == "coconut train: loss is nan at step 3; lower optim.lr\n"
    monkeypatch.setattr(run, "train", breaks)
    assert main(common) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected ZeroDivisionError: division by zero" in err and "--debug" in err


def test_logging_is_the_projects_own_logger_only(capsys):
    """The root logger is left alone (configuring it printed Lightning's lines twice); ours is set up once."""
    import logging

    from coconut.cli.main import main

    root_handlers = list(logging.getLogger().handlers)
    for _ in range(2):
        assert main(["train", "demo_coconut", "--dry-run"]) == 0
    assert logging.getLogger().handlers == root_handlers
    ours = [h for h in logging.getLogger("coconut").handlers if getattr(h, "coconut_cli", False)]
    assert len(ours) == 2, "one handler for progress (stdout), one for warnings (stderr), added once"
    logging.getLogger("coconut.train").info("progress line")
    logging.getLogger("coconut.train").warning("careful")
    out = capsys.readouterr()
    assert out.out.endswith("progress line\n") and out.err == "WARNING: careful\n"


def test_every_bench_option_has_help_text():
    from coconut.cli.main import build_parser

    bench = build_parser()._subparsers._group_actions[0].choices["bench"]
    options = [a for a in bench._actions if a.option_strings and a.dest != "help"]
    assert len(options) >= 15
    for action in options:
        assert action.help and not action.help.startswith("(default"), f"{action.option_strings[0]} has no help"
