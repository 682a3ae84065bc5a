"""Record what the official SIM-CoT release (CODI variant, `use_decoder`) computes on a tiny random GPT-2.

The release is github.com/InternLM/SIM-CoT at commit f3ae9679945baff02ac9b3ad48b6217737cedba1, folder `CODI/`
(`src/model.py` class `CODI` with `--use_decoder True`, and `train.py`). Same approach as
tools/codi_release_fixtures.py: the release's files are written into a temporary folder outside the repository,
imported from there, and train.py `train()`'s statements from `if model_args.lora_init:` up to
`training_args.output_dir = ...` (LoRA config, `CODI(...)`, tokenizer, the preprocessing definitions) are executed
verbatim; the records go through `SupervisedDataset(data_name="icot")` and the collator, then one `CODI.forward`.

Shims (every change made to the release's behaviour; nothing else is altered):
1. model.py: `resume_download=True,` and `use_flash_attention_2=False,` removed from `from_pretrained` (4 places
   each; TypeErrors on transformers 5; the second is a no-op request for the default attention anyway).
2. model.py: `torch_dtype=(torch.float16 if training_args.bf16 is False else torch.bfloat16)` → `dtype=torch.float32`
   (4 places; fp32 on CPU). The release's `torch.cuda.amp.autocast(dtype=torch.bfloat16)` blocks are left as they
   are: on a machine without CUDA they are disabled (a warning), so everything runs in fp32.
3. model.py: the GPT-2 token ids hard-coded in the `get_steps` call, `start_ids=(16791, 9959), end_id=4211`
   (GPT-2's "<<", " <<", ">>"), are replaced by the tiny tokenizer's ids of the same strings.
4. train.py: the hard-coded data path read by `SupervisedDataset`
   (`/mnt/shared-storage-user/weixilin/MLLM/coconut/data/gsm_train_clean.json`) is replaced by a JSON file holding the
   records below (COCONUT format: question, steps, answer; the release joins `steps` with spaces into `cot`).
5. train.py: command-line parsing, output folder, Trainer are not executed; argument dataclasses (the release's own)
   are built here.
6. `model.eval()`: LoRA dropout 0.1 (hard-coded in train.py) inactive; every other dropout is 0.
7. The LoRA B matrices (zero at init) are set to seeded N(0, 0.05^2) values so that the adapters matter.
The tiny model's folder is named `tiny-gpt2` so that the release's name sniffing picks its GPT-2 branches.

Run:  python tools/simcot_codi_release_fixtures.py [--release PATH]
Output: tests/fixtures/simcot_release/codi/ (see tests/fixtures/simcot_release/README.md).
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
OUT = ROOT / "tests" / "fixtures" / "simcot_release" / "codi"
DATA_PATH = "/mnt/shared-storage-user/weixilin/MLLM/coconut/data/gsm_train_clean.json"

# The release drops the last step (include_last_cot False): kept steps 1, 2 and 4. With num_latent 2 there are 3
# decoder targets per row: row 0 has 1 step + 2 unsupervised slots, row 1 2 + 1, row 2 has steps 3 and 4 merged.
RECORDS = [
    {"question": "Tom has 2 boxes with 3 pens each and then buys 4 more pens. How many pens does he have?",
     "steps": ["<<2*3=6>>", "<<6+4=10>>"], "answer": "10"},
    {"question": "Ann reads 5 pages a day for 4 days and then 7 more pages. How many pages did she read?",
     "steps": ["<<5*4=20>>", "<<20+7=27>>", "<<27-2=25>>"], "answer": "25"},
    {"question": "A shop bakes 6 cakes an hour for 3 hours and 2 hours of 5. How many cakes are baked?",
     "steps": ["<<6*3=18>>", "<<2*5=10>>", "<<18+10=28>>", "<<28-8=20>>", "<<20*2=40>>"], "answer": "40"},
]
GPT2 = dict(n_layer=2, n_embd=16, n_head=2, n_positions=128, initializer_range=0.1, resid_pdrop=0.0, embd_pdrop=0.0,
            attn_pdrop=0.0)
CODI_ARGS = dict(num_latent=2, use_prj=True, prj_dim=24, prj_dropout=0.0, prj_no_ln=False,
                 distill_loss_type="smooth_l1",
                 distill_loss_div_std=True, distill_loss_factor=1.0, ref_loss_factor=1.0, explain_loss_factor=1.0,
                 remove_eos=True, include_last_cot=False, fix_attn_mask=False, print_loss=False)
LORA = dict(lora_r=4, lora_alpha=8)
SEED_MODEL, SEED_CODI, SEED_LORA_B = 0, 1, 2
LORA_B_STD = 0.05
EOS = "<|endoftext|>"


def _replace(text: str, old: str, new: str, count: int) -> str:
    assert text.count(old) == count, (old, text.count(old))
    return text.replace(old, new)


def release_sources(release: Path, dest: Path, ids: dict, data_path: Path) -> dict[str, Path]:
    git = ["git", f"--git-dir={release}"] if (release / "HEAD").is_file() else ["git", "-C", str(release)]
    paths = {}
    for name in ("src/model.py", "train.py"):
        text = subprocess.run(git + ["show", f"{RELEASE_COMMIT}:CODI/{name}"], capture_output=True, text=True,
                              check=True).stdout
        if name == "src/model.py":
            text = _replace(text, "resume_download=True,", "", 4)  # shim 1
            text = _replace(text, "use_flash_attention_2=False,", "", 4)
            text = _replace(text, "torch_dtype=(", "dtype=(", 4)  # shim 2
            text = _replace(text, "torch.float16 if training_args.bf16 is False else torch.bfloat16",
                            "torch.float32", 4)
            text = _replace(text, "start_ids=(16791, 9959), end_id=4211",  # shim 3
                            f"start_ids=({ids['<<']}, {ids[' <<']}), end_id={ids['>>']}", 1)
        else:
            text = _replace(text, DATA_PATH, str(data_path), 1)  # shim 4
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        paths[name] = path
    return paths


def function_body(path: Path, name: str) -> list[ast.stmt]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return next(n.body for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)


def src(stmt: ast.stmt, path: Path) -> str:
    return ast.get_source_segment(path.read_text(), stmt) or ""


def build_tiny_gpt2(folder: Path) -> tuple[int, dict]:
    """Byte-level BPE on the records' texts as the release tokenises them; eos last (as GPT-2); random GPT-2."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    texts = []
    for r in RECORDS:
        texts += [r["question"], " ".join(r["steps"][:-1]), f"The answer is: {r['answer']}"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=1000, min_frequency=1, show_progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder))
    vocab = json.loads((folder / "vocab.json").read_text())
    vocab[EOS] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "GPT2Tokenizer", "model_max_length": 1024, "add_prefix_space": False,
         "bos_token": EOS, "eos_token": EOS, "unk_token": EOS}, indent=1))
    torch.manual_seed(SEED_MODEL)
    config = GPT2Config(vocab_size=len(vocab), bos_token_id=vocab[EOS], eos_token_id=vocab[EOS], **GPT2)
    GPT2LMHeadModel(config).save_pretrained(folder)
    byte = {" ": "Ġ"}
    ids = {s: vocab["".join(byte.get(ch, ch) for ch in s)] for s in ("<<", " <<", ">>")}
    return len(vocab), ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--release", type=Path,
                        default=Path(os.environ.get("SIMCOT_RELEASE", "/work/.mirror/InternLM+SIM-CoT/repo")))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    args.out = args.out.resolve()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    work = Path(tempfile.mkdtemp(prefix="simcot_codi_release_"))
    assert ROOT not in work.resolve().parents
    model_dir = work / "tiny-gpt2"
    vocab_size, step_ids = build_tiny_gpt2(model_dir)
    data_path = work / "gsm_records.json"
    data_path.write_text(json.dumps(RECORDS))
    paths = release_sources(args.release, work, step_ids, data_path)

    sys.path.insert(0, str(work))
    release_model = importlib.import_module("src.model")
    train_mod = importlib.import_module("train")
    assert Path(release_model.__file__).resolve() == paths["src/model.py"].resolve()
    assert Path(train_mod.__file__).resolve() == paths["train.py"].resolve()

    model_args = release_model.ModelArguments(model_name_or_path=str(model_dir), lora_init=True, full_precision=True,
                                              train=True, use_decoder=True, **LORA)
    data_args = release_model.DataArguments(data_name="icot")
    training_args = release_model.TrainingArguments(output_dir=str(work / "out"), report_to="none", bf16=False,
                                                    model_max_length=512, **CODI_ARGS)
    body = function_body(paths["train.py"], "train")
    first = next(i for i, s in enumerate(body) if src(s, paths["train.py"]).startswith("if model_args.lora_init"))
    last = next(i for i, s in enumerate(body) if src(s, paths["train.py"]).startswith("training_args.output_dir"))
    ns = dict(vars(train_mod), model_args=model_args, data_args=data_args, training_args=training_args)
    torch.manual_seed(SEED_CODI)
    module = ast.Module(body=copy.deepcopy(body[first:last]), type_ignores=[])
    exec(compile(ast.fix_missing_locations(module), str(paths["train.py"]), "exec"), ns)
    model, tokenizer = ns["model"], ns["tokenizer"]
    assert (model.pad_token_id, model.bot_id, model.eot_id) == (vocab_size, vocab_size + 1, vocab_size + 2)
    assert tokenizer.pad_token_id == model.tokenizer.pad_token_id == model.pad_token_id
    gen = torch.Generator().manual_seed(SEED_LORA_B)  # shim 7
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * LORA_B_STD)
    model.eval()  # shim 6

    dataset = ns["SupervisedDataset"](data_name="icot", raw_data=None, tokenizer=tokenizer, bot=model.bot_id,
                                      eot=model.eot_id)
    assert len(dataset) == len(RECORDS)
    batch = ns["DataCollatorForSupervisedDataset"](tokenizer=tokenizer)([dataset[i] for i in range(len(dataset))])

    dec_calls, prj_out = [], []
    hooks = [model.decoder.register_forward_hook(
                 lambda m, a, kw, out: dec_calls.append(dict(inputs_embeds=kw["inputs_embeds"].detach().clone(),
                                                             attention_mask=kw["attention_mask"].detach().clone(),
                                                             logits=out.logits.detach().clone())), with_kwargs=True),
             model.prj.register_forward_hook(lambda m, a, out: prj_out.append(out.detach().clone()))]
    with torch.no_grad():
        result = model(**batch)
    for h in hooks:
        h.remove()
    with torch.no_grad():
        again = model(**batch)
    assert torch.equal(result["loss"], again["loss"]), "forward is not deterministic"

    # the release's step targets, recomputed with its own functions (as forward does)
    steps_list = release_model.get_steps(batch["ref_input_ids"], training_args.num_latent + 1,
                                         start_ids=(step_ids["<<"], step_ids[" <<"]), end_id=step_ids[">>"],
                                         eot_id=tokenizer.eos_token_id, pad_id=tokenizer.pad_token_id,
                                         stop_ids=(tokenizer.eos_token_id, tokenizer.pad_token_id))
    steps_pad = release_model.pad_steps(steps_list, pad_id=tokenizer.pad_token_id)
    n_targets = training_args.num_latent + 1
    assert len(dec_calls) == n_targets  # every call has a target in this batch
    wte = model.get_embd(model.codi, model.model_name).weight.detach()
    aux, per_call = [], []
    for k, dc in enumerate(dec_calls):
        # the step ids the release actually fed: recovered exactly from the embeddings (see the note on
        # dedup_trailing_pads in the README: they are not always the padded steps of get_steps)
        emb = dc["inputs_embeds"][:, 1:]
        ids = torch.cdist(emb.reshape(-1, emb.size(-1)), wte).argmin(-1).view(emb.shape[:2])
        assert torch.equal(wte[ids], emb), "decoder inputs are not embedding rows"
        assert torch.equal(dc["inputs_embeds"][:, 0], prj_out[k][:, 0]), "the first slot is latent k"
        labels = torch.cat([torch.full((len(RECORDS), 1), -100), ids], 1)
        labels[labels == tokenizer.pad_token_id] = -100
        assert torch.equal(dc["attention_mask"], torch.cat([torch.ones(len(RECORDS), 1, dtype=torch.bool),
                                                            ids != tokenizer.pad_token_id], 1))
        loss_k = torch.nn.functional.cross_entropy(dc["logits"][:, :-1].reshape(-1, dc["logits"].size(-1)),
                                                   labels[:, 1:].reshape(-1), ignore_index=-100)
        per_call.append(loss_k)
        aux.append(dict(dc, step_ids=ids, labels=labels, latent=prj_out[k][:, 0], loss=loss_k))
    explain = torch.stack(per_call).sum() * training_args.explain_loss_factor / len(per_call)
    torch.testing.assert_close(explain, result["explain_loss"], rtol=0, atol=1e-6)
    intended = steps_list

    # the same records in reverse order: the targets the release feeds depend on which row comes first
    collator = ns["DataCollatorForSupervisedDataset"](tokenizer=tokenizer)
    rev = collator([dataset[i] for i in reversed(range(len(dataset)))])
    rev_calls = []
    hook = model.decoder.register_forward_hook(
        lambda m, a, kw, out: rev_calls.append(kw["inputs_embeds"][:, 1:].detach().clone()), with_kwargs=True)
    with torch.no_grad():
        rev_result = model(**rev)
    hook.remove()
    rev_targets = []
    for emb in rev_calls:
        ids = torch.cdist(emb.reshape(-1, emb.size(-1)), wte).argmin(-1).view(emb.shape[:2])
        rev_targets.append([[tokenizer.decode([i]) for i in row if i != tokenizer.pad_token_id]
                            for row in ids.tolist()])
    print("decoder calls:", len(dec_calls), "of", n_targets, "targets; losses", {k: float(result[k]) for k in
          ("loss", "ce_loss", "distill_loss", "ref_ce_loss", "explain_loss")})

    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    merged = copy.deepcopy(model.codi).merge_and_unload().eval()
    merged.save_pretrained(args.out / "model")
    model.decoder.save_pretrained(args.out / "aux_decoder")
    tok_dir = args.out / "tokenizer"
    tok_dir.mkdir()
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(model_dir / name, tok_dir / name)
    torch.save({k: v.detach().clone() for k, v in model.prj.state_dict().items()}, args.out / "prj.pt")
    inputs = {k: v.clone() for k, v in batch.items()}
    torch.save(dict(
        inputs=inputs,
        forward=dict(loss=result["loss"].detach(), ce_loss=result["ce_loss"], distill_loss=result["distill_loss"],
                     ref_ce_loss=result["ref_ce_loss"], explain_loss=result["explain_loss"],
                     latents=torch.stack([p[:, 0] for p in prj_out], 1),  # [B, num_latent+1, d]
                     student_logits=result["logits"].detach()),
        aux=aux), args.out / "forward.pt")
    meta = {
        "release": {"repo": "github.com/InternLM/SIM-CoT", "commit": RELEASE_COMMIT, "folder": "CODI"},
        "generated_by": "python tools/simcot_codi_release_fixtures.py",
        "vocab_size_original": vocab_size, "vocab_size": vocab_size + 3, "pad_id": model.pad_token_id,
        "bot_id": model.bot_id, "eot_id": model.eot_id, "eos_id": tokenizer.eos_token_id, "step_ids": step_ids,
        "gpt2": GPT2, "lora": {**LORA, "b_std": LORA_B_STD}, "codi": CODI_ARGS,
        "seeds": {"model": SEED_MODEL, "codi": SEED_CODI, "lora_b": SEED_LORA_B}, "records": RECORDS,
        "steps_list": steps_list,
        "intended_targets": [[[tokenizer.decode([i]) for i in step] for step in r] for r in intended],
        "aux_loss_per_call": [x.item() for x in per_call],
        "reversed_batch": {"records_order": [2, 1, 0], "explain_loss": float(rev_result["explain_loss"]),
                           "aux_targets": rev_targets},
        "aux_targets": [[[tokenizer.decode([i]) for i in row[row != -100].tolist()] for row in a["labels"]]
                        for a in aux],
        "losses": {k: float(result[k]) for k in ("loss", "ce_loss", "distill_loss", "ref_ce_loss", "explain_loss")},
    }
    (args.out / "fixtures.json").write_text(json.dumps(meta, indent=1) + "\n")
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {args.out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
