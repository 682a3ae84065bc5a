"""Record what the official SIM-CoT release (COCONUT variant) computes on a tiny random GPT-2, as test fixtures.

The release is github.com/InternLM/SIM-CoT at commit f3ae9679945baff02ac9b3ad48b6217737cedba1; its COCONUT code
(`Coconut/coconut.py`, `run.py`, `dataset.py`, `utils.py`, `args/gsm_simcot.yaml`) was committed once, in b327462.
This script RUNS the release's own code; nothing of it is copied into this repository. It writes those files (taken
with `git show` from a clone or mirror) into a temporary folder outside the repository, imports `coconut`, `dataset`,
`utils` and `run` from there (run.py's `if __name__ == "__main__"` block does not run) and executes:

- run.py `main()`: the statements from `model = AutoModelForCausalLM.from_pretrained(configs.model_id)` up to (not
  including) `print(f"Running FSDP ...")`, verbatim (extracted with `ast`, compiled with the release file as file
  name): base model, the auxiliary decoder (`explainable_model`, a second `from_pretrained` of the same model_id), the
  tokenizer with `pad_token = eos` and the three markers, the checkpoint loading, the resize + "<<"-initialisation of
  the marker rows, and `CoconutGPT_Same_Word_Embedding(...)`; then the checkpoint is loaded with `strict=False` by
  run.py's own statement (a COCONUT checkpoint has no `expainable_llm.*` keys, so the decoder keeps the pretrained
  weights: that is how the release initialises it).
- dataset.py: `get_dataset` on the records (written as the release's JSON), then
  `get_cot_with_explainable_latent_dataset(stage, ...)` and `MyExplainableCollator`; `dataset.get_cot_latent_dataset`
  and `MyCollator` too, for the batch run.py actually builds (see shim 3).
- coconut.py `CoconutGPT_Same_Word_Embedding.forward(**batch)` (batch without "idx", as run.py does).

Shims (every change made to the release's behaviour; nothing else is altered):
1. transformers 5 cache API. The release (transformers 4.46) reads `outputs.past_key_values` as a list of per-layer
   `(k, v)` tuples and passes such lists back as `past_key_values=`. The base model class given to run.py's
   `AutoModelForCausalLM.from_pretrained` is `LegacyCacheGPT2`, a subclass of `GPT2LMHeadModel` (so the release's
   `isinstance(..., GPT2LMHeadModel)` check still holds; same weights, same state-dict keys) whose `forward` turns an
   incoming list of `(k, v)` into a `DynamicCache` and sets `outputs.past_key_values` to the list of `(k, v)` of the
   returned cache. Numerically a no-op. (Used for both the base model and the decoder; the decoder never uses a cache.)
2. run.py `main()`: the distributed set-up, command-line/YAML reading, resume logic, FSDP/DDP wrapping, optimizer,
   wandb, data loaders and loops are not executed; `local_rank` is "cpu"; `configs` is the release's
   `utils.Config` built from the release's own `args/gsm_simcot.yaml` with the overrides listed in CONFIG_OVERRIDES
   (paths, and max_latent_stage 3 instead of 5 so that the tiny records reach the "merge the remaining steps" and
   "pseudo thought" branches).
3. Data set functions: run.py as released trains with `get_cot_latent_dataset` + `MyCollator`, which never produce
   `explainable_ids_list`, so `CoconutGPT_Same_Word_Embedding.forward` never computes the auxiliary loss on that path
   (recorded below as `forward_runpy.pt`: total = LM loss). For the SIM-CoT loss the script uses the release's own
   `get_cot_with_explainable_latent_dataset` + `MyExplainableCollator` (defined in dataset.py and imported by run.py,
   but unused there), called exactly as run.py calls the plain ones. `datasets.map(num_proc=32)` is run with
   `num_proc` as written (datasets lowers it to the number of records).
4. `model.eval()` (the release's override: only `base_causallm.eval()`; the decoder stays in the eval mode
   `from_pretrained` leaves it in, as in the release). The tiny GPT-2 has all dropout probabilities 0 anyway; the
   script checks that two forwards agree bitwise.
5. Recording only: `coconut.CrossEntropyLoss` (the name the release's forward calls) is replaced by a subclass that
   stores its inputs/targets/outputs, and a forward hook on `expainable_llm` stores its inputs and logits. Values
   are not changed.
6. run.py imports `wandb` at module level; when it is not installed, an empty stand-in module named `wandb` is put in
   `sys.modules` before the import (run.py only calls wandb inside the training loop, which does not run here).
No COCONUT checkpoint is downloaded: a "COCONUT checkpoint" is made by wrapping a second random GPT-2 (vocab + 3
markers) in the release's own `Coconut` class and saving its `state_dict()` (what run.py saves); run.py loads it.

Run (well under a minute on 2 CPU cores):  python tools/simcot_release_fixtures.py [--release PATH]
PATH is a git directory or a checkout of InternLM/SIM-CoT (default: $SIMCOT_RELEASE, else
/work/.mirror/InternLM+SIM-CoT/repo). Output: tests/fixtures/simcot_release/ (see its README.md).
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

RELEASE_COMMIT = "f3ae9679945baff02ac9b3ad48b6217737cedba1"
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "simcot_release"
FILES = ("coconut.py", "run.py", "dataset.py", "utils.py", "args/gsm_simcot.yaml")

# GSM8k-Aug records in the release's JSON format (preprocessing/gsm_icot.py: steps = the "<<...>>" items).
# 2, 3 and 4 steps: at stage 2 every record keeps 2 latent steps; at stage 4 (> max_latent_stage 3) record 0 gets a
# pseudo thought, record 1 maps one step per thought, record 2 has its last two steps merged into the third thought.
RECORDS = [
    {"question": "Tom has 2 boxes with 3 pens each and then buys 4 more pens. How many pens does he have?",
     "steps": ["<<2*3=6>>", "<<6+4=10>>"], "answer": "10"},
    {"question": "Ann reads 5 pages a day for 4 days and then 7 more pages. How many pages did she read?",
     "steps": ["<<5*4=20>>", "<<20+7=27>>", "<<27-2=25>>"], "answer": "25"},
    {"question": "A shop bakes 6 cakes an hour for 3 hours and sells 8. How many cakes are left?",
     "steps": ["<<6*3=18>>", "<<18-8=10>>", "<<10+1=11>>", "<<11*2=22>>"], "answer": "22"},
]
STAGES = (2, 4)
CONFIG_OVERRIDES = dict(max_latent_stage=3, load_model_path="<written by this script>", model_id="<tiny-gpt2>",
                        train_path="<records>", val_path="<records>")
GPT2 = dict(n_layer=2, n_embd=32, n_head=2, n_positions=128, initializer_range=0.1, resid_pdrop=0.0, embd_pdrop=0.0,
            attn_pdrop=0.0)
SEED_PRETRAINED, SEED_COCONUT_CKPT, SEED_DATA = 0, 1, 0
EOS = "<|endoftext|>"


# ----------------------------------------------------------------------------------------------------- release files
def release_sources(release: Path, dest: Path) -> dict[str, Path]:
    git = ["git", f"--git-dir={release}"] if (release / "HEAD").is_file() else ["git", "-C", str(release)]
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    if head != RELEASE_COMMIT:
        print(f"note: {release} HEAD is {head}; reading files at {RELEASE_COMMIT}")
    paths = {}
    for name in FILES:
        text = subprocess.run(git + ["show", f"{RELEASE_COMMIT}:Coconut/{name}"], capture_output=True, text=True,
                              check=True).stdout
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        paths[name] = path
    return paths


def function_body(path: Path, name: str) -> list[ast.stmt]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node.body
    raise LookupError(f"{name} not in {path}")


def src(stmt: ast.stmt, path: Path) -> str:
    return ast.get_source_segment(path.read_text(), stmt) or ""


def run_statements(stmts: list[ast.stmt], path: Path, namespace: dict) -> dict:
    module = ast.Module(body=copy.deepcopy(stmts), type_ignores=[])
    ast.fix_missing_locations(module)
    exec(compile(module, str(path), "exec"), namespace)
    return namespace


# ------------------------------------------------------------------------------------------------------------ shims
def legacy_cache_gpt2():
    """Shim 1: GPT2LMHeadModel speaking transformers 4.46's tuple KV-cache API (see the module docstring)."""
    from transformers import DynamicCache, GPT2LMHeadModel

    class LegacyCacheGPT2(GPT2LMHeadModel):
        def forward(self, *args, past_key_values=None, **kwargs):
            if isinstance(past_key_values, (list, tuple)):
                past_key_values = DynamicCache([(k, v) for k, v in past_key_values], config=self.config)
            if past_key_values is not None:
                kwargs["cache"] = past_key_values
            out = super().forward(*args, **kwargs)
            if getattr(out, "cache", None) is not None:
                out.past_key_values = [(k, v) for k, v, *_ in out.cache]
            return out

    return LegacyCacheGPT2


def recording_ce(store: list):
    """Shim 5 (recording only)."""
    from torch.nn import CrossEntropyLoss

    class RecordingCrossEntropyLoss(CrossEntropyLoss):
        def forward(self, input, target):
            out = super().forward(input, target)
            store.append(dict(reduction=self.reduction, input=input.detach().clone(), target=target.detach().clone(),
                              output=out.detach().clone()))
            return out

    return RecordingCrossEntropyLoss


# ----------------------------------------------------------------------------------------------- tiny model/tokenizer
def build_tokenizer(folder: Path) -> int:
    """Byte-level BPE trained on the records' texts (as the release tokenises them); eos is the LAST id, as in GPT-2
    (50256), so that the collator's 0-padding of explainable_ids_list is an ordinary token id, as in GPT-2 ("!")."""
    from tokenizers import ByteLevelBPETokenizer

    texts = []
    for r in RECORDS:
        texts += [r["question"] + "\n", *[s + "\n" for s in r["steps"]], "### " + r["answer"]]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=1000, min_frequency=1, show_progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder))
    vocab = json.loads((folder / "vocab.json").read_text())
    assert EOS not in vocab and sorted(vocab.values()) == list(range(len(vocab)))
    vocab[EOS] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "GPT2Tokenizer", "model_max_length": 1024, "add_prefix_space": False,
         "bos_token": EOS, "eos_token": EOS, "unk_token": EOS}, indent=1))
    return len(vocab)


def build_tiny_gpt2(folder: Path, vocab_size: int, eos_id: int, seed: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab_size, bos_token_id=eos_id, eos_token_id=eos_id, **GPT2)
    model = GPT2LMHeadModel(config)
    if folder is not None:
        model.save_pretrained(folder)
    return model


# ------------------------------------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--release", type=Path,
                        default=Path(os.environ.get("SIMCOT_RELEASE", "/work/.mirror/InternLM+SIM-CoT/repo")))
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="simcot_release_"))
    assert ROOT not in work.resolve().parents, "the release code must live outside the repository"
    paths = release_sources(args.release, work)

    model_dir = work / "tiny-gpt2"
    vocab_size = build_tokenizer(model_dir)
    eos_id = vocab_size - 1
    build_tiny_gpt2(model_dir, vocab_size, eos_id, SEED_PRETRAINED)  # the "pretrained" model_id

    args.out = args.out.resolve()
    sys.path.insert(0, str(work))
    os.chdir(work)  # the release imports its modules by bare name
    import yaml

    coconut_mod = importlib.import_module("coconut")
    dataset_mod = importlib.import_module("dataset")
    utils_mod = importlib.import_module("utils")
    try:
        import wandb  # noqa: F401
    except ImportError:  # shim 6
        import types

        sys.modules["wandb"] = types.ModuleType("wandb")
    run_mod = importlib.import_module("run")
    for mod, name in ((coconut_mod, "coconut.py"), (dataset_mod, "dataset.py"), (utils_mod, "utils.py"),
                      (run_mod, "run.py")):
        assert Path(mod.__file__).resolve() == paths[name].resolve(), mod.__file__

    config_dict = yaml.safe_load(paths["args/gsm_simcot.yaml"].read_text())
    release_yaml = dict(config_dict)
    data_path = work / "data" / "gsm_records.json"
    data_path.parent.mkdir(exist_ok=True)
    data_path.write_text(json.dumps(RECORDS))
    ckpt_path = work / "ckpts" / "gsm-coconut" / "checkpoint_24"
    config_dict.update(max_latent_stage=CONFIG_OVERRIDES["max_latent_stage"], model_id=str(model_dir),
                       load_model_path=str(ckpt_path), train_path=str(data_path), val_path=str(data_path))
    configs = utils_mod.Config(config_dict)
    utils_mod.set_seed(configs.seed)

    # ---- a COCONUT checkpoint as run.py writes it: state_dict() of the release's Coconut around the resized LM
    from transformers import AutoTokenizer

    tok0 = AutoTokenizer.from_pretrained(model_dir)
    for t in ("<|start-latent|>", "<|end-latent|>", "<|latent|>"):
        tok0.add_tokens(t)
    ids = [tok0.convert_tokens_to_ids(t) for t in ("<|latent|>", "<|start-latent|>", "<|end-latent|>")]
    coconut_lm = build_tiny_gpt2(None, vocab_size + 3, eos_id, SEED_COCONUT_CKPT)
    baseline = coconut_mod.Coconut(coconut_lm, *ids, tok0.eos_token_id)
    ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(baseline.state_dict(), ckpt_path)
    del tok0, baseline

    # ---- run.py main(): models, tokenizer, markers, checkpoint, CoconutGPT_Same_Word_Embedding (shim 2)
    body = function_body(paths["run.py"], "main")
    texts = [src(s, paths["run.py"]) for s in body]
    first = next(i for i, t in enumerate(texts) if t.startswith("model = AutoModelForCausalLM.from_pretrained"))
    last = next(i for i, t in enumerate(texts) if t.startswith('print(f"Running FSDP'))
    ns = dict(vars(run_mod), configs=configs, local_rank="cpu", rank=0)
    ns["AutoModelForCausalLM"] = legacy_cache_gpt2()  # shim 1
    run_statements(body[first:last], paths["run.py"], ns)
    model, tokenizer = ns["model"], ns["tokenizer"]
    assert type(model).__name__ == "CoconutGPT_Same_Word_Embedding"
    latent_id, start_id, end_id = ns["latent_id"], ns["start_id"], ns["end_id"]
    assert (start_id, end_id, latent_id) == (vocab_size, vocab_size + 1, vocab_size + 2)
    assert tokenizer.pad_token_id == tokenizer.eos_token_id == eos_id
    saved = torch.load(ckpt_path)
    base_sd = model.base_causallm.state_dict()
    assert all(torch.equal(base_sd[k[len("base_causallm."):]], v) for k, v in saved.items()
               if k.startswith("base_causallm."))
    pretrained = build_tiny_gpt2(None, vocab_size, eos_id, SEED_PRETRAINED).state_dict()
    dec_sd = model.expainable_llm.state_dict()
    assert all(torch.equal(dec_sd[k], v) for k, v in pretrained.items()), "decoder must keep the pretrained weights"
    model.eval()  # shim 4 (release override: base_causallm.eval() only)
    assert not model.expainable_llm.training and not model.base_causallm.training

    # ---- recording hooks (shim 5)
    ce_calls, dec_calls = [], []
    coconut_mod.CrossEntropyLoss = recording_ce(ce_calls)
    model.expainable_llm.register_forward_hook(
        lambda m, a, kw, out: dec_calls.append(dict(
            inputs_embeds=kw["inputs_embeds"].detach().clone(), attention_mask=kw["attention_mask"].detach().clone(),
            position_ids=kw["position_ids"].detach().clone(), logits=out.logits.detach().clone())),
        with_kwargs=True)

    # ---- data (dataset.py), the batches, and the forward per stage
    base_dataset = dataset_mod.get_dataset(configs.train_path, tokenizer)
    step_text = {"start": tokenizer.encode("<<", add_special_tokens=False),
                 "end": tokenizer.encode(">>", add_special_tokens=False),
                 "sep": tokenizer.encode("\n", add_special_tokens=False),
                 "merged_end_sep": tokenizer.encode(">>\n", add_special_tokens=False)}
    assert all(len(v) == 1 for k, v in step_text.items() if k != "merged_end_sep")
    assert len(step_text["merged_end_sep"]) == 2  # as GPT-2: the Llama-3 ">>\n" branch is not taken
    assert tokenizer.convert_tokens_to_ids("<<") == step_text["start"][0]
    results, meta_stages = {}, {}
    for stage in STAGES:
        n_lat = min(stage, configs.max_latent_stage) * configs.c_thought
        ds = dataset_mod.get_cot_with_explainable_latent_dataset(
            stage, base_dataset, configs, start_id, latent_id, end_id,
            no_special_marker=configs.cot or configs.no_cot or configs.no_thoughts, shuffle=False)
        features = [dict(ds[i]) for i in range(len(ds))]
        collator = dataset_mod.MyExplainableCollator(tokenizer, latent_id=latent_id, label_pad_token_id=-100)
        batch = collator(copy.deepcopy(features))
        fwd_batch = {k: batch[k] for k in batch.keys() if k != "idx"}  # as run.py
        ce_calls.clear()
        dec_calls.clear()
        with torch.no_grad():
            out = model(**fwd_batch)
        lm_calls = [c for c in ce_calls if c["reduction"] == "mean"]
        aux_calls = [c for c in ce_calls if c["reduction"] == "sum"]
        n_thoughts = n_lat // configs.c_thought
        assert len(lm_calls) == 1 and len(aux_calls) == n_thoughts == len(dec_calls)
        with torch.no_grad():
            again = model(**fwd_batch)
        assert torch.equal(out.loss, again.loss) and torch.equal(out.logits, again.logits), "not deterministic"

        # aux labels: the release shifts them before the CE; un-shift for the record ([B, L_t], label[0] = -100)
        aux = []
        for t, (dc, cc) in enumerate(zip(dec_calls, aux_calls)):
            B, L = dc["attention_mask"].shape
            shifted = cc["target"].view(B, L - 1)
            labels = torch.cat([torch.full((B, 1), -100, dtype=shifted.dtype), shifted], 1)
            count = float((labels != -100).sum(dim=1).bool().sum().item())
            aux.append(dict(dc, labels=labels, loss_sum=cc["output"], effective_count=torch.tensor(count),
                            loss=cc["output"] / count))
        lm_loss = lm_calls[0]["output"]
        aux_loss = sum(a["loss"] for a in aux) / n_thoughts
        torch.testing.assert_close(out.loss, lm_loss + 1.0 * aux_loss, rtol=0, atol=1e-6)

        latent_pos = (batch["input_ids"] == latent_id).nonzero()
        thoughts = out.inputs_embeds[latent_pos[:, 0], latent_pos[:, 1]].view(len(RECORDS), n_lat, -1)
        # what run.py actually trains on: get_cot_latent_dataset + MyCollator -> no explainable_ids_list (shim 3)
        plain = dataset_mod.get_cot_latent_dataset(stage, base_dataset, configs, start_id, latent_id, end_id,
                                                   no_special_marker=False, shuffle=False)
        plain_batch = dataset_mod.MyCollator(tokenizer, latent_id=latent_id, label_pad_token_id=-100)(
            [dict(plain[i]) for i in range(len(plain))])
        with torch.no_grad():
            plain_out = model(**{k: plain_batch[k] for k in plain_batch.keys() if k != "idx"})
        for k in ("input_ids", "labels", "attention_mask", "position_ids"):
            assert torch.equal(plain_batch[k], batch[k]), k
        assert torch.equal(plain_out.loss, lm_loss), "run.py's batch gives the LM loss alone"

        results[stage] = dict(
            inputs={k: batch[k].clone() for k in ("input_ids", "labels", "attention_mask", "position_ids",
                                                  "explainable_ids_list")},
            forward=dict(
                loss=out.loss.detach(), lm_loss=lm_loss, aux_loss=aux_loss.detach(),
                aux_loss_per_thought=torch.stack([a["loss"] for a in aux]),
                aux_loss_sum_per_thought=torch.stack([a["loss_sum"] for a in aux]),
                aux_effective_count=torch.stack([a["effective_count"] for a in aux]),
                lm_logits=out.logits.detach(), inputs_embeds=out.inputs_embeds.detach(),
                latent_positions=latent_pos[:, 1].view(len(RECORDS), n_lat).clone(), thoughts=thoughts.detach(),
                runpy_batch_loss=plain_out.loss.detach()),
            aux=[{k: a[k] for k in ("inputs_embeds", "attention_mask", "position_ids", "labels", "logits")}
                 for a in aux],
        )
        meta_stages[stage] = dict(
            n_latent=n_lat, n_thoughts=n_thoughts,
            losses=dict(loss=out.loss.item(), lm_loss=lm_loss.item(), aux_loss=aux_loss.item(),
                        aux_loss_per_thought=[a["loss"].item() for a in aux],
                        aux_loss_sum_per_thought=[a["loss_sum"].item() for a in aux],
                        aux_effective_count=[a["effective_count"].item() for a in aux],
                        runpy_batch_loss=plain_out.loss.item()),
            features=[{k: f[k] for k in ("input_ids", "labels", "explainable_ids_list")} for f in features],
            aux_targets=[[[tokenizer.decode([i]) for i in row[row != -100].tolist()] for row in a["labels"]]
                         for a in aux],
        )
        print(f"stage {stage}: loss {out.loss.item():.6f} = lm {lm_loss.item():.6f} + aux {aux_loss.item():.6f} "
              f"(per thought {[round(a['loss'].item(), 6) for a in aux]}); run.py batch loss "
              f"{plain_out.loss.item():.6f}")

    # ---- save
    # replace this script's outputs only (README.md and the CODI variant's codi/ folder stay)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("base_model", "aux_decoder", "tokenizer"):
        shutil.rmtree(args.out / name, ignore_errors=True)
    for name in ("fixtures.json", *(f"stage{s}.pt" for s in STAGES)):
        (args.out / name).unlink(missing_ok=True)
    from transformers import GPT2LMHeadModel

    def plain_copy(m):  # save as a plain GPT2LMHeadModel (shim 1's subclass only changes the cache API)
        p = GPT2LMHeadModel(m.config)
        p.load_state_dict(m.state_dict())
        return p.eval()

    plain_copy(model.base_causallm).save_pretrained(args.out / "base_model")
    plain_copy(model.expainable_llm).save_pretrained(args.out / "aux_decoder")
    tok_dir = args.out / "tokenizer"
    tok_dir.mkdir()
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(model_dir / name, tok_dir / name)
    for stage, r in results.items():
        torch.save(dict(inputs=r["inputs"], forward=r["forward"], aux=r["aux"]), args.out / f"stage{stage}.pt")
    meta = {
        "release": {"repo": "github.com/InternLM/SIM-CoT", "commit": RELEASE_COMMIT, "folder": "Coconut"},
        "generated_by": "python tools/simcot_release_fixtures.py",
        "vocab_size_original": vocab_size, "vocab_size": vocab_size + 3, "eos_id": eos_id, "pad_id": eos_id,
        "start_latent_id": start_id, "end_latent_id": end_id, "latent_id": latent_id,
        "step_start_id": step_text["start"][0], "step_end_id": step_text["end"][0], "newline_id": step_text["sep"][0],
        "gpt2": GPT2, "seeds": {"pretrained": SEED_PRETRAINED, "coconut_checkpoint": SEED_COCONUT_CKPT,
                                "release_set_seed": configs.seed},
        "release_yaml": release_yaml,
        "config": {k: v for k, v in config_dict.items() if k not in ("model_id", "load_model_path", "train_path",
                                                                     "val_path")},
        "config_overrides": CONFIG_OVERRIDES,
        "aux_loss_weight": 1.0,
        "records": RECORDS,
        "stages": {str(k): v for k, v in meta_stages.items()},
    }
    (args.out / "fixtures.json").write_text(json.dumps(meta, indent=1) + "\n")
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {args.out} ({total / 1e6:.2f} MB)")
    assert total < 1.5e6


if __name__ == "__main__":
    main()
