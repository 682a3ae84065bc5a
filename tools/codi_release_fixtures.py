"""Record what the official CODI release computes on a tiny random GPT-2, as test fixtures.

The release is github.com/zhenyi4/codi at commit 4fd88d4b76f7f7a4d912c07cfd4796ee9e0a0339 ("fix gsm8k-nl training
bugs"). This script RUNS the release's own code; nothing of it is copied into this repository. It writes the release's
`src/model.py`, `train.py` and `test.py` (taken with `git show` from a clone or mirror of that commit) into a temporary
folder outside the repository, imports `src.model.CODI` from there, imports `train.py` and `test.py` as modules (their
`if __name__ == "__main__"` blocks do not run), and executes selected statements of the functions `train()` and
`evaluation()` verbatim (extracted with `ast`, compiled with the release file as file name):

- train.py `train()`: the statements from `if model_args.lora_init:` (LoRA config, gpt2 target modules, the hard-coded
  lora_dropout=0.1) up to the last nested definition (`model = CODI(...)`, the tokenizer, its `[PAD]` handling,
  `get_answer_token_position`, `preprocess`, `SupervisedDataset`, `DataCollatorForSupervisedDataset`). The records are
  then run through `SupervisedDataset(data_name="icot", ...)` (the GSM8k-Aug branch) and the collator, as
  `make_supervised_data_module` does after loading the hub data set.
- test.py `evaluation()`: the tokenizer (left padding) and question/answer formatting, the batching loop that appends
  `<bot>`, `gen_kwargs`, and the whole `for step, batch in enumerate(question_data):` inference loop.
- The checkpoint the release's Trainer would write at the end of train.py (`trainer.save_model`: for a module that
  is no PreTrainedModel, transformers saves `torch.save(model.state_dict())` as pytorch_model.bin), and test.py
  `evaluation()`'s own loading statements (LoraConfig, `CODI(...)` from the base model, `load_state_dict(strict=False)`,
  `tie_weights()`) run on it: the script checks that they read every tensor back with no missing or unexpected key.

Shims (every change made to the release's behaviour; nothing else is altered):
1. model.py: `resume_download=True,` removed from `from_pretrained` (TypeError on transformers 5).
2. model.py: `torch_dtype=` renamed `dtype=`, and `torch.float16 if training_args.bf16 is False else torch.bfloat16`
   replaced by `torch.float32` (fp32 on CPU; the release loads fp16 without --bf16).
3. train.py: the statements of `train()` that parse the command line, set the output folder, load the hub data set and
   build/run the HF Trainer are not executed; argument dataclasses (the release's own `ModelArguments`,
   `DataArguments`, `TrainingArguments`) are built in this script, and the 3 records below replace the hub data set.
4. test.py: for the recorded inference, the checkpoint loading (`load_state_dict` of a trained checkpoint; it runs
   afterwards, on the saved checkpoint, as a check), `device = "cuda"`, `model.to('cuda')`,
   `model.to(torch.bfloat16)`, the hub data set and the accuracy summary are not executed; the string constant 'cuda'
   is replaced by 'cpu' in the executed statements; `gen_kwargs["max_new_tokens"]` is set to 12 after the release's
   `gen_kwargs` assignment (release: 256).
5. test.py is run with eval batch size 3 (all questions in one batch). Reason: its greedy step
   `torch.argmax(logits, dim=-1).squeeze(-1)` gives a 0-d tensor for a batch of one, and `next_token_ids[b]` then raises
   IndexError, so the release cannot decode a batch of one. The questions have equal token length, so no padding is
   involved and every row equals what that question alone would give (tests/engine/test_codi_release_fixtures.py
   checks this with a one-question-at-a-time loop).
6. `model.eval()` after construction: no dropout anywhere (the tiny GPT-2 has all dropout probabilities 0, the
   projection has prj_dropout 0, and LoRA's dropout of 0.1, hard-coded in train.py's LoraConfig, is inactive in eval
   mode; the script checks that two forwards agree bitwise).
7. The LoRA B matrices (zero at init) are overwritten with seeded N(0, 0.05^2) values so that the adapters matter.
No shim is needed for the model-name sniffing (LoRA targets in train.py, `get_embd` in model.py): the tiny model's
folder is named `tiny-gpt2`, which contains "gpt2" and none of llama/mistral/falcon/qwen/phi/pythia.

Run (about a minute on 2 CPU cores):  python tools/codi_release_fixtures.py [--release PATH]
PATH is a git directory or a checkout of zhenyi4/codi at the commit above (default: $CODI_RELEASE, else
/work/.mirror/zhenyi4+codi/repo). Output: tests/fixtures/codi_release/ (see its README.md).
"""

from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

RELEASE_COMMIT = "4fd88d4b76f7f7a4d912c07cfd4796ee9e0a0339"
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "codi_release"

# GSM8k-Aug-style records (fields as in zen-E/GSM8k-Aug). The questions have equal token length under the tokenizer
# trained below (checked in main), so the release's left padding of the encoder ids is a no-op.
RECORDS = [
    {"question": "Tom has 2 boxes with 3 pens each and then buys 4 more pens. How many pens does he have?",
     "cot": "<<2*3=6>> <<6+4=10>>", "answer": "10"},
    {"question": "Ann reads 5 pages a day for 4 days and then 7 more pages. How many pages did she read?",
     "cot": "<<5*4=20>> <<20+7=27>>", "answer": "27"},
    {"question": "A shop bakes 6 cakes an hour for 3 hours and 2 hours of 5. How many cakes are baked?",
     "cot": "<<6*3=18>> <<2*5=10>> <<18+10=28>>", "answer": "28"},
]

GPT2 = dict(n_layer=2, n_embd=32, n_head=2, n_positions=128, initializer_range=0.1, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
CODI_ARGS = dict(num_latent=3, use_prj=True, prj_dim=48, prj_dropout=0.0, prj_no_ln=False, distill_loss_type="smooth_l1",
                 distill_loss_div_std=True, distill_loss_factor=1.0, ref_loss_factor=1.0, remove_eos=True,
                 include_last_cot=False, fix_attn_mask=False, inf_latent_iterations=3, greedy=True)
LORA = dict(lora_r=4, lora_alpha=8)
SEED_MODEL, SEED_CODI, SEED_LORA_B = 0, 1, 2
LORA_B_STD = 0.05
MAX_NEW_TOKENS = 12


# ----------------------------------------------------------------------------------------------------- release files
def release_sources(release: Path, dest: Path) -> dict[str, Path]:
    """Write the release's src/model.py, train.py, test.py at RELEASE_COMMIT under dest; return their paths."""
    git = ["git", f"--git-dir={release}"] if (release / "HEAD").is_file() else ["git", "-C", str(release)]
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    if head != RELEASE_COMMIT:
        print(f"note: {release} HEAD is {head}; reading files at {RELEASE_COMMIT}")
    paths = {}
    for name in ("src/model.py", "train.py", "test.py"):
        text = subprocess.run(git + ["show", f"{RELEASE_COMMIT}:{name}"], capture_output=True, text=True,
                              check=True).stdout
        if name == "src/model.py":
            text = shim_model_py(text)
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        paths[name] = path
    return paths


def _replace(text: str, old: str, new: str, count: int) -> str:
    assert text.count(old) == count, (old, text.count(old))
    return text.replace(old, new)


def shim_model_py(text: str) -> str:
    text = _replace(text, "resume_download=True,", "", 2)  # shim 1
    text = _replace(text, "torch_dtype=(", "dtype=(", 2)  # shim 2
    return _replace(text, "torch.float16 if training_args.bf16 is False else torch.bfloat16", "torch.float32", 2)


def function_body(path: Path, name: str) -> list[ast.stmt]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node.body
    raise LookupError(f"{name} not in {path}")


class _CudaToCpu(ast.NodeTransformer):
    def visit_Constant(self, node):
        return ast.copy_location(ast.Constant("cpu"), node) if node.value == "cuda" else node


def run_statements(stmts: list[ast.stmt], path: Path, namespace: dict, cuda_to_cpu: bool = False) -> dict:
    module = ast.Module(body=copy.deepcopy(stmts), type_ignores=[])
    if cuda_to_cpu:
        module = _CudaToCpu().visit(module)  # shim 4
    ast.fix_missing_locations(module)
    exec(compile(module, str(path), "exec"), namespace)
    return namespace


def src(stmt: ast.stmt, path: Path) -> str:
    return ast.get_source_segment(path.read_text(), stmt) or ""


# ----------------------------------------------------------------------------------------------- tiny model/tokenizer
def build_tiny_gpt2(folder: Path) -> int:
    """A byte-level BPE GPT-2 tokenizer trained on the records, and a random GPT-2 with its vocabulary; returns V."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    texts = []
    for r in RECORDS:
        texts += [r["question"], r["cot"], f"The answer is: {r['answer']}"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=1000, min_frequency=1, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder))
    eos = "<|endoftext|>"
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "GPT2Tokenizer", "model_max_length": 1024, "add_prefix_space": False,
         "bos_token": eos, "eos_token": eos, "unk_token": eos}, indent=1))
    vocab = bpe.get_vocab()
    torch.manual_seed(SEED_MODEL)
    config = GPT2Config(vocab_size=len(vocab), bos_token_id=vocab[eos], eos_token_id=vocab[eos], **GPT2)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return len(vocab)


# ------------------------------------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--release", type=Path,
                        default=Path(os.environ.get("CODI_RELEASE", "/work/.mirror/zhenyi4+codi/repo")))
    parser.add_argument("--workdir", type=Path, default=None, help="temporary folder (default: a fresh /tmp one)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="codi_release_"))
    assert ROOT not in work.resolve().parents, "the release code must live outside the repository"
    paths = release_sources(args.release, work)
    model_dir = work / "tiny-gpt2"  # "gpt2" in the name: the release's LoRA targets and get_embd pick GPT-2
    vocab_size = build_tiny_gpt2(model_dir)

    sys.path.insert(0, str(work))
    release_model = importlib.import_module("src.model")
    assert Path(release_model.__file__).resolve() == paths["src/model.py"].resolve()
    train_mod = importlib.import_module("train")  # module level only: imports, _tokenize_fn, CustomTrainer, print
    test_mod = importlib.import_module("test")
    assert Path(train_mod.__file__).resolve() == paths["train.py"].resolve()
    assert Path(test_mod.__file__).resolve() == paths["test.py"].resolve()

    model_args = release_model.ModelArguments(model_name_or_path=str(model_dir), lora_init=True, full_precision=True,
                                              train=True, **LORA)
    data_args = release_model.DataArguments(data_name="icot", batch_size=len(RECORDS))  # shim 5
    training_args = release_model.TrainingArguments(output_dir=str(work / "out"), report_to="none", bf16=False,
                                                    model_max_length=512, **CODI_ARGS)

    # ---- train.py train(): LoRA config, CODI(...), tokenizer, preprocessing definitions (shim 3)
    body = function_body(paths["train.py"], "train")
    first = next(i for i, s in enumerate(body) if src(s, paths["train.py"]).startswith("if model_args.lora_init"))
    last = next(i for i, s in enumerate(body) if src(s, paths["train.py"]).startswith("training_args.output_dir"))
    ns = dict(vars(train_mod), model_args=model_args, data_args=data_args, training_args=training_args)
    torch.manual_seed(SEED_CODI)  # mean-resizing of the 3 new rows, LoRA A init, prj init
    run_statements(body[first:last], paths["train.py"], ns)
    model, tokenizer = ns["model"], ns["tokenizer"]
    assert (model.pad_token_id, model.bot_id, model.eot_id) == (vocab_size, vocab_size + 1, vocab_size + 2)
    assert tokenizer.pad_token_id == model.pad_token_id
    lora_config = ns["lora_config"]
    print("release LoraConfig:", dict(r=lora_config.r, alpha=lora_config.lora_alpha,
                                      dropout=lora_config.lora_dropout, targets=sorted(lora_config.target_modules)))

    gen = torch.Generator().manual_seed(SEED_LORA_B)  # shim 7
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * LORA_B_STD)
    model.eval()  # shim 6
    assert not any(m.training for m in model.modules())

    # ---- preprocessing (train.py SupervisedDataset, icot branch, + collator)
    dataset = ns["SupervisedDataset"](data_name="icot", raw_data=RECORDS, tokenizer=tokenizer, bot=model.bot_id,
                                      eot=model.eot_id)
    batch = ns["DataCollatorForSupervisedDataset"](tokenizer=tokenizer)([dataset[i] for i in range(len(dataset))])
    assert len(dataset) == len(RECORDS)
    q_lens = {len(tokenizer(r["question"]).input_ids) for r in RECORDS}
    assert len(q_lens) == 1, f"questions must have equal token length, got {q_lens}"
    assert bool(batch["encoder_attention_mask"].all()), "no left padding expected"

    # ---- forward, with hooks on the release's own modules
    calls, prj_out, distill = [], [], []
    hooks = [
        model.codi.register_forward_hook(lambda m, a, kw, out: calls.append((sorted(kw), out)), with_kwargs=True),
        model.prj.register_forward_hook(lambda m, a, out: prj_out.append(out.detach().clone())),
        # the release divides the SmoothL1 output in place by the teacher std: keep a clone (raw) and the object
        model.distill_loss_fct.register_forward_hook(
            lambda m, a, out: distill.append((a[0].detach().clone(), a[1].detach().clone(), out.detach().clone(), out))),
    ]
    torch.manual_seed(0)
    result = model(**batch)
    for h in hooks:
        h.remove()
    again = model(**batch)
    assert torch.equal(result["loss"], again["loss"]) and torch.equal(result["logits"], again["logits"]), \
        "forward is not deterministic (dropout active?)"

    n_lat = training_args.num_latent
    assert len(calls) == 3 + n_lat + 1, len(calls)  # encoder, teacher(no_grad), teacher(grad), latents, decoder
    assert len(prj_out) == n_lat + 1 and len(distill) == GPT2["n_layer"] + 1
    teacher_out, decoder_out = calls[2][1], calls[-1][1]
    assert torch.equal(calls[1][1].logits, teacher_out.logits)
    raw = torch.stack([d[2] for d in distill])
    per_layer = torch.stack([d[3].detach() for d in distill])
    ref_sel = torch.stack([d[1][:, 0] for d in distill])  # [L+1, B, d]
    stu_sel = torch.stack([d[0][:, 0] for d in distill])
    std = torch.stack([r.std() for r in ref_sel])
    torch.testing.assert_close(per_layer, raw / std, rtol=0, atol=1e-7)
    distill_unscaled = per_layer.sum() / len(distill)

    # teacher/student hidden states at the distillation token, straight from the outputs (the hook's inputs agree)
    t_pos = batch["ref_answer_position"] - 1
    s_pos = batch["model_answer_position"] - 1
    rows = torch.arange(len(RECORDS))
    t_hid = torch.stack([h[rows, t_pos] for h in teacher_out.hidden_states]).detach()
    s_hid = torch.stack([h[rows, s_pos] for h in decoder_out.hidden_states]).detach()
    assert torch.equal(t_hid, ref_sel) and torch.equal(s_hid, stu_sel)

    losses = {
        "loss": result["loss"].item(),
        "student_ce": result["ce_loss"],
        "teacher_ce": result["ref_ce_loss"],
        "distill_loss": result["distill_loss"],
        "distill_loss_unscaled": distill_unscaled.item(),
        "distill_loss_factor": training_args.distill_loss_factor,
        "ref_loss_factor": training_args.ref_loss_factor,
        "distill_per_layer_raw": raw.tolist(),
        "distill_per_layer": per_layer.tolist(),
        "teacher_std_per_layer": std.tolist(),
    }
    print("losses:", json.dumps(losses, indent=1))

    # ---- inference (test.py evaluation(): tokenizer, batching, the decoding loop) -- shims 4 and 5
    body = function_body(paths["test.py"], "evaluation")
    text_of = [src(s, paths["test.py"]) for s in body]

    def pick(start: str, stop: str | None = None) -> list[ast.stmt]:
        i = next(k for k, t in enumerate(text_of) if t.startswith(start))
        j = i + 1 if stop is None else next(k for k, t in enumerate(text_of) if k > i and t.startswith(stop))
        return body[i:j]

    tns = dict(vars(test_mod), model_args=model_args, data_args=data_args, training_args=training_args, model=model,
               test_set=RECORDS, question_name="question", answer_name="answer", device="cpu")
    test_mod.data_args = data_args  # extract_answer_number reads the module global
    run_statements(pick("tokenizer_path =", "device ="), paths["test.py"], tns)
    run_statements(pick("question = [", "ans_pred_list ="), paths["test.py"], tns)
    assert len(tns["question_data"]) == 1 and tns["question_data"][0]["attention_mask"].all()
    tns["gen_kwargs"]["max_new_tokens"] = MAX_NEW_TOKENS  # shim 4
    inf_prj = []
    hook = model.prj.register_forward_hook(lambda m, a, out: inf_prj.append(out.detach().clone()))
    run_statements(pick("ans_pred_list =", "accuracy ="), paths["test.py"], tns, cuda_to_cpu=True)
    hook.remove()
    generated = [list(map(int, p)) for p in tns["pred_tokens"]]
    inference = {
        "generated_ids": generated,
        "generated_text": [tokenizer.decode(p, skip_special_tokens=True) for p in generated],
        "predicted_answer": [float(a) for a in tns["ans_pred_list"]],
        "encoder_input_ids": tns["question_data"][0]["input_ids"].tolist(),
    }
    assert inference["encoder_input_ids"] == batch["encoder_input_ids"].tolist()
    print("inference:", json.dumps(inference))

    # ---- merged plain GPT-2 and the check that it reproduces the LoRA model
    merged = copy.deepcopy(model.codi).merge_and_unload()
    merged.eval()
    with torch.no_grad():
        lora_logits = model.codi(input_ids=batch["ref_input_ids"]).logits
        plain_logits = merged(input_ids=batch["ref_input_ids"]).logits
        with model.codi.disable_adapter():
            base_logits = model.codi(input_ids=batch["ref_input_ids"]).logits
    merge_diff = (lora_logits - plain_logits).abs().max().item()
    print(f"merged GPT-2 vs LoRA model, teacher logits: max abs diff {merge_diff:.3g} "
          f"(LoRA changes them by up to {(lora_logits - base_logits).abs().max().item():.3g})")
    assert merge_diff < 1e-4

    # ---- the checkpoint the release's Trainer writes, read back by test.py's own loading statements
    # train.py ends with trainer.save_model(); CODI is no PreTrainedModel, so transformers' Trainer._save writes
    # torch.save(model.state_dict()) as pytorch_model.bin (the scripts set save_safetensors False): the whole module,
    # base weights (the 3 resized rows included), LoRA A/B not merged, and prj.
    ckpt_dir = work / "release_checkpoint"
    ckpt_dir.mkdir(exist_ok=True)
    saved_state = model.state_dict()
    torch.save(saved_state, ckpt_dir / "pytorch_model.bin")
    lns = dict(vars(test_mod), model_args=dataclasses.replace(model_args, ckpt_dir=str(ckpt_dir)),
               data_args=data_args, training_args=training_args)
    # test.py evaluation(): LoraConfig, CODI(...) from the base model, load_state_dict(strict=False), tie_weights
    run_statements(pick("if model_args.lora_init", "tokenizer_path ="), paths["test.py"], lns)
    reloaded = lns["model"]
    missing, unexpected = reloaded.load_state_dict(lns["state_dict"], strict=False)
    assert not missing and not unexpected, (missing[:3], unexpected[:3])
    again_state = reloaded.state_dict()
    assert list(again_state) == list(saved_state)
    assert all(torch.equal(again_state[k], v) for k, v in saved_state.items())
    lora_keys = [k for k in saved_state if ".lora_" in k]
    print(f"release checkpoint: {len(saved_state)} keys ({len(lora_keys)} LoRA), e.g. {lora_keys[0]}; test.py's "
          "loading reads it back with no missing or unexpected key")

    # ---- save
    readme = args.out / "README.md"
    readme_text = readme.read_text() if readme.is_file() else None
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    if readme_text is not None:
        readme.write_text(readme_text)
    merged.save_pretrained(args.out / "model")
    tok_dir = args.out / "tokenizer"
    tok_dir.mkdir()
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(model_dir / name, tok_dir / name)
    torch.save({k: v.detach().clone() for k, v in model.prj.state_dict().items()}, args.out / "prj.pt")
    (args.out / "release_checkpoint").mkdir()
    shutil.copy(ckpt_dir / "pytorch_model.bin", args.out / "release_checkpoint" / "pytorch_model.bin")
    shutil.copytree(model_dir, args.out / "base_model")  # model_name_or_path: the base GPT-2 before CODI touched it
    inputs = {k: batch[k].clone() for k in ("encoder_input_ids", "encoder_attention_mask", "decoder_input_ids",
                                            "labels", "ref_input_ids", "ref_labels", "ref_attention_mask",
                                            "ref_answer_position", "model_answer_position")}
    inputs["teacher_distill_index"] = t_pos.clone()
    inputs["student_distill_index"] = s_pos.clone()
    torch.save(inputs, args.out / "inputs.pt")
    torch.save({
        "loss": result["loss"].detach(),
        "student_ce": torch.tensor(result["ce_loss"]),
        "teacher_ce": torch.tensor(result["ref_ce_loss"]),
        "distill_loss": torch.tensor(result["distill_loss"]),
        "distill_loss_unscaled": distill_unscaled.detach(),
        "distill_per_layer_raw": raw,
        "distill_per_layer": per_layer,
        "teacher_std_per_layer": std,
        "latents": torch.stack(prj_out[:n_lat], 1)[:, :, 0],  # [B, num_latent, d], the vectors fed back
        "latent_discarded": prj_out[n_lat][:, 0],  # [B, d], prj of the last latent step's output (never fed)
        "teacher_hidden_at_distill": t_hid.transpose(0, 1).contiguous(),  # [B, L+1, d]
        "student_hidden_at_distill": s_hid.transpose(0, 1).contiguous(),
        "student_logits": decoder_out.logits.detach(),  # [B, T_dec, V+3]
        "teacher_logits": teacher_out.logits.detach(),  # [B, T_ref, V+3]
    }, args.out / "forward.pt")
    torch.save({"generated_ids": [torch.tensor(g) for g in generated],
                "latents": torch.stack(inf_prj[:training_args.inf_latent_iterations], 1)[:, :, 0]},
               args.out / "inference.pt")
    names = {model.pad_token_id: "<pad>", model.bot_id: "<bot>", model.eot_id: "<eot>"}

    def readable(ids) -> list[str]:
        return [names.get(int(i)) or tokenizer.decode([int(i)]) for i in ids]

    meta = {
        "release": {"repo": "github.com/zhenyi4/codi", "commit": RELEASE_COMMIT},
        "generated_by": "python tools/codi_release_fixtures.py",
        "vocab_size_original": vocab_size, "vocab_size": vocab_size + 3,
        "pad_id": model.pad_token_id, "bot_id": model.bot_id, "eot_id": model.eot_id,
        "eos_id": tokenizer.eos_token_id,
        "gpt2": GPT2, "lora": {**LORA, "lora_dropout": lora_config.lora_dropout,
                               "target_modules": sorted(lora_config.target_modules), "b_std": LORA_B_STD},
        "codi": CODI_ARGS, "seeds": {"model": SEED_MODEL, "codi": SEED_CODI, "lora_b": SEED_LORA_B},
        "max_new_tokens": MAX_NEW_TOKENS,
        "records": RECORDS,
        "preprocessed": {key: [readable(x) for x in dataset.data_dict[key]]
                         for key in ("encoder_input_ids", "decoder_input_ids", "ref_input_ids")},
        "inputs": {k: v.tolist() for k, v in inputs.items()},
        "losses": losses,
        "inference": inference,
        "merge_check_max_abs_diff": merge_diff,
    }
    (args.out / "fixtures.json").write_text(json.dumps(meta, indent=1) + "\n")
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {args.out} ({total / 1e6:.2f} MB)")
    assert total < 2e6


if __name__ == "__main__":
    main()
