"""The SIM-CoT release fixtures (tests/fixtures/simcot_release, made by tools/simcot_release_fixtures.py) are complete
and self-consistent: plain transformers/torch calls on the saved base model, auxiliary decoder, tokenizer and ids
reproduce every recorded value of the official release's `CoconutGPT_Same_Word_Embedding.forward`. No project code
is used here, so a failure means the fixtures (or transformers) changed, not the project's implementation."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "simcot_release"
ATOL = 1e-5
STAGES = ("2", "4")


@pytest.fixture(scope="module")
def fx():
    from transformers import GPT2LMHeadModel

    meta = json.loads((FIX / "fixtures.json").read_text())
    return dict(meta=meta,
                base=GPT2LMHeadModel.from_pretrained(FIX / "base_model").eval(),
                aux=GPT2LMHeadModel.from_pretrained(FIX / "aux_decoder").eval(),
                stages={s: torch.load(FIX / f"stage{s}.pt") for s in STAGES})


def close(got, want, what):
    diff = (got - want).abs().max().item()
    print(f"{what}: max abs diff {diff:.3g}")  # shown with pytest -s
    assert diff <= ATOL, f"{what}: max abs diff {diff:.3g}"


def test_fixture_files_are_small_and_named():
    total = sum(f.stat().st_size for f in FIX.rglob("*") if f.is_file())
    assert total < 1.5e6
    for name in ("README.md", "fixtures.json", "stage2.pt", "stage4.pt", "base_model/config.json",
                 "aux_decoder/config.json", "tokenizer/vocab.json", "tokenizer/merges.txt"):
        assert (FIX / name).is_file(), name


def test_models_and_special_ids(fx):
    meta, base, aux = fx["meta"], fx["base"], fx["aux"]
    v = meta["vocab_size_original"]
    assert base.config.vocab_size == v + 3 and aux.config.vocab_size == v  # the decoder is not resized
    assert (meta["start_latent_id"], meta["end_latent_id"], meta["latent_id"]) == (v, v + 1, v + 2)
    assert meta["eos_id"] == meta["pad_id"] == v - 1
    # run.py initialises the three marker rows with the embedding of "<<" (before the checkpoint overwrote them);
    # here they come from the COCONUT checkpoint, so only the tying is checked
    assert base.lm_head.weight.data_ptr() == base.transformer.wte.weight.data_ptr()
    assert aux.lm_head.weight.data_ptr() == aux.transformer.wte.weight.data_ptr()
    # the decoder is the pretrained model, the base model the (different) COCONUT checkpoint
    assert not torch.equal(aux.transformer.h[0].attn.c_attn.weight, base.transformer.h[0].attn.c_attn.weight)


def test_inputs_follow_the_release_format(fx):
    from transformers import AutoTokenizer

    meta = fx["meta"]
    tok = AutoTokenizer.from_pretrained(FIX / "tokenizer")
    eos, c, max_stage = meta["eos_id"], meta["config"]["c_thought"], meta["config"]["max_latent_stage"]
    for s in STAGES:
        inputs, stage = fx["stages"][s]["inputs"], int(s)
        n_lat = min(stage, max_stage) * c
        rows = []
        for r in meta["records"]:
            q = tok.encode(r["question"] + "\n")
            steps = [tok.encode(x + "\n") for x in r["steps"]]
            skip = stage if stage <= max_stage else len(steps)
            rest = [t for x in steps[skip:] for t in x]
            ids = q + [meta["start_latent_id"]] + [meta["latent_id"]] * n_lat + [meta["end_latent_id"]] + rest \
                + tok.encode("### " + r["answer"]) + [eos]
            labels = [-100] * (len(q) + n_lat + 2) + ids[len(q) + n_lat + 2:]
            rows.append((q, steps[:skip], ids, labels))
        first = max(len(q) for q, *_ in rows) + 1  # the collator left-pads so the first latents line up
        width = inputs["input_ids"].size(1)
        for i, (q, kept, ids, labels) in enumerate(rows):
            pad = first - len(q) - 1
            right = width - pad - len(ids)
            assert inputs["input_ids"][i].tolist() == [eos] * pad + ids + [eos] * right
            assert inputs["labels"][i].tolist() == [-100] * pad + labels + [-100] * right
            assert inputs["attention_mask"][i].tolist() == [0] * pad + [1] * len(ids) + [0] * right
            assert inputs["position_ids"][i].tolist() == [0] * pad + list(range(len(ids))) + [0] * right
            flat = [t for x in kept for t in x]
            row = inputs["explainable_ids_list"][i].tolist()
            assert row == flat + [0] * (len(row) - len(flat))  # the collator pads the flat step ids with 0


def coconut_forward(base, inputs, latent_id):
    """COCONUT's multi-pass forward by full recomputation: latent k is replaced by the last hidden state (after ln_f)
    of the position before it, pass by pass; causal attention makes this equal to the release's KV-cache passes."""
    ids, mask, pos = inputs["input_ids"], inputs["attention_mask"], inputs["position_ids"]
    embeds = base.get_input_embeddings()(ids)
    lat = [(row == latent_id).nonzero()[:, 0].tolist() for row in ids]
    for k in range(max(len(x) for x in lat)):
        out = base(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, output_hidden_states=True)
        h = out.hidden_states[-1]
        embeds = embeds.clone()
        for b, p in enumerate(lat):
            if k < len(p):
                embeds[b, p[k]] = h[b, p[k] - 1]
    return embeds, base(inputs_embeds=embeds, attention_mask=mask, position_ids=pos).logits


@pytest.mark.parametrize("stage", STAGES)
@torch.no_grad()
def test_coconut_pass_reproduces_the_release(fx, stage):
    base, meta, rec = fx["base"], fx["meta"], fx["stages"][stage]
    inputs, fwd = rec["inputs"], rec["forward"]
    embeds, logits = coconut_forward(base, inputs, meta["latent_id"])
    close(embeds, fwd["inputs_embeds"], f"stage {stage} inputs_embeds with thoughts")
    rows = torch.arange(3)[:, None]
    close(embeds[rows, fwd["latent_positions"]], fwd["thoughts"], f"stage {stage} thoughts")
    keep = inputs["attention_mask"].bool()  # left-pad rows attend to nothing: compare the real positions
    close(logits[keep], fwd["lm_logits"][keep], f"stage {stage} LM logits")
    lm = F.cross_entropy(fwd["lm_logits"][:, :-1].reshape(-1, logits.size(-1)), inputs["labels"][:, 1:].reshape(-1))
    close(lm, fwd["lm_loss"], f"stage {stage} LM loss from recorded logits")
    close(fwd["runpy_batch_loss"], fwd["lm_loss"], "run.py's own batch has no aux loss")


@pytest.mark.parametrize("stage", STAGES)
@torch.no_grad()
def test_aux_decoder_and_losses_reproduce_the_release(fx, stage):
    base, aux, meta, rec = fx["base"], fx["aux"], fx["meta"], fx["stages"][stage]
    fwd, c, eos = rec["forward"], meta["config"]["c_thought"], meta["eos_id"]
    wte = base.get_input_embeddings()
    per_thought = []
    for t, a in enumerate(rec["aux"]):
        # input = the c thoughts of thought t, then the BASE model's embeddings of the step ids, eos and eos padding
        close(a["inputs_embeds"][:, :c], fwd["thoughts"][:, t * c:(t + 1) * c], f"stage {stage} thought {t} prefix")
        step_ids = torch.where(a["labels"][:, c:] != -100, a["labels"][:, c:], eos)
        close(a["inputs_embeds"][:, c:], wte(step_ids), f"stage {stage} thought {t} step embeddings")
        n_tok = (a["labels"] != -100).sum(1)
        assert a["attention_mask"].tolist() == [[1] * (c + n) + [0] * (a["labels"].size(1) - c - n)
                                                for n in n_tok.tolist()]
        assert (a["position_ids"] == torch.arange(1, a["labels"].size(1) + 1)).all()  # positions start at 1
        out = aux(inputs_embeds=a["inputs_embeds"], attention_mask=a["attention_mask"],
                  position_ids=a["position_ids"])
        close(out.logits, a["logits"], f"stage {stage} thought {t} decoder logits")
        total = F.cross_entropy(a["logits"][:, :-1].reshape(-1, a["logits"].size(-1)), a["labels"][:, 1:].reshape(-1),
                                reduction="sum")
        count = (a["labels"] != -100).any(1).sum()  # sequences with a target, not tokens
        close(total, fwd["aux_loss_sum_per_thought"][t], f"stage {stage} thought {t} summed CE")
        assert count.item() == fwd["aux_effective_count"][t].item()
        per_thought.append(total / count)
    per_thought = torch.stack(per_thought)
    close(per_thought, fwd["aux_loss_per_thought"], f"stage {stage} aux loss per thought")
    close(per_thought.mean(), fwd["aux_loss"], f"stage {stage} aux loss")
    close(fwd["lm_loss"] + meta["aux_loss_weight"] * per_thought.mean(), fwd["loss"], f"stage {stage} total loss")


def test_aux_targets_map_thoughts_to_steps(fx):
    """Thought t (c latents) writes step t; at stage > max_latent_stage the steps from the max_latent_stage-th on are
    merged (joined by a newline) into the last thought, and missing steps are replaced by the text after
    <end-latent> up to eos (the "### answer" pseudo step)."""
    from transformers import AutoTokenizer

    meta = fx["meta"]
    tok = AutoTokenizer.from_pretrained(FIX / "tokenizer")
    max_stage = meta["config"]["max_latent_stage"]
    for s in STAGES:
        aux = fx["stages"][s]["aux"]
        n_thoughts = meta["stages"][s]["n_thoughts"]
        for i, r in enumerate(meta["records"]):
            steps = r["steps"][:int(s)]
            if len(steps) > max_stage:
                steps = steps[:max_stage - 1] + ["\n".join(steps[max_stage - 1:])]
            steps += ["### " + r["answer"]] * (n_thoughts - len(steps))
            for t in range(n_thoughts):
                labels = aux[t]["labels"][i]
                want = tok.encode(steps[t]) + [meta["eos_id"]]
                assert labels[labels != -100].tolist() == want, (s, i, t)


# ------------------------------------------------------------------------------------------------- CODI variant
CODI_FIX = FIX / "codi"


@pytest.fixture(scope="module")
def codi_fx():
    from torch import nn
    from transformers import GPT2LMHeadModel

    meta = json.loads((CODI_FIX / "fixtures.json").read_text())
    model = GPT2LMHeadModel.from_pretrained(CODI_FIX / "model").eval()
    d, codi = model.config.n_embd, meta["codi"]
    prj = nn.Sequential(nn.Dropout(codi["prj_dropout"]), nn.Linear(d, codi["prj_dim"]), nn.GELU(),
                        nn.Linear(codi["prj_dim"], d))
    prj.add_module("ln", nn.LayerNorm(d))
    prj.load_state_dict(torch.load(CODI_FIX / "prj.pt"))
    return dict(meta=meta, model=model, prj=prj.eval(), rec=torch.load(CODI_FIX / "forward.pt"),
                aux=GPT2LMHeadModel.from_pretrained(CODI_FIX / "aux_decoder").eval())


@torch.no_grad()
def test_codi_latents_decoder_and_losses_reproduce_the_release(codi_fx):
    from transformers import DynamicCache

    meta, model, prj, aux, rec = codi_fx["meta"], codi_fx["model"], codi_fx["prj"], codi_fx["aux"], codi_fx["rec"]
    inputs, fwd = rec["inputs"], rec["forward"]
    assert aux.config.vocab_size == meta["vocab_size_original"] and model.config.vocab_size == meta["vocab_size"]
    cache = DynamicCache(config=model.config)
    out = model(input_ids=inputs["encoder_input_ids"], attention_mask=inputs["encoder_attention_mask"], cache=cache,
                use_cache=True, output_hidden_states=True)
    latents = [prj(out.hidden_states[-1][:, -1:])]
    for _ in range(meta["codi"]["num_latent"]):  # the last projected latent is computed but never fed
        out = model(inputs_embeds=latents[-1], cache=cache, use_cache=True, output_hidden_states=True)
        latents.append(prj(out.hidden_states[-1][:, -1:]))
    latents = torch.cat(latents, 1)
    close(latents, fwd["latents"], "CODI latents (num_latent + 1)")
    wte = model.get_input_embeddings()
    student = model(inputs_embeds=wte(inputs["decoder_input_ids"]), cache=cache, use_cache=True).logits
    close(student, fwd["student_logits"], "CODI student logits")
    ce = F.cross_entropy(student[:, :-1].reshape(-1, student.size(-1)), inputs["labels"][:, 1:].reshape(-1))
    close(ce, fwd["ce_loss"], "CODI student CE")

    per_call = []
    for k, a in enumerate(rec["aux"]):  # decoder call k reads latent k (one vector) then the step ids
        close(a["inputs_embeds"][:, 0], latents[:, k], f"CODI decoder call {k} latent")
        close(a["inputs_embeds"][:, 1:], wte(a["step_ids"]), f"CODI decoder call {k} step embeddings")
        assert torch.equal(a["attention_mask"][:, 1:], a["step_ids"] != meta["pad_id"])
        assert a["attention_mask"][:, 0].all()
        logits = aux(inputs_embeds=a["inputs_embeds"], attention_mask=a["attention_mask"]).logits  # positions 0..
        close(logits, a["logits"], f"CODI decoder call {k} logits")
        loss = F.cross_entropy(a["logits"][:, :-1].reshape(-1, logits.size(-1)), a["labels"][:, 1:].reshape(-1))
        close(loss, a["loss"], f"CODI decoder call {k} token-mean CE")
        per_call.append(loss)
    explain = torch.stack(per_call).mean() * meta["codi"]["explain_loss_factor"]
    close(explain, fwd["explain_loss"], "CODI explain loss")
    close(fwd["ce_loss"] + fwd["distill_loss"] + fwd["ref_ce_loss"] + explain, fwd["loss"], "CODI total loss")


def test_codi_targets_are_truncated_to_the_first_rows_step(codi_fx):
    """The release's dedup_trailing_pads runs inside the per-row loop and cuts every row to the length of row 0's
    step (+1): in this batch row 0 has only one kept step, so calls 1 and 2 supervise only the first token."""
    meta = codi_fx["meta"]
    intended = meta["intended_targets"]
    got = meta["aux_targets"]
    assert got[0] == [intended[b][0] for b in range(3)]
    for k in (1, 2):
        for b in range(3):
            want = intended[b][k]
            assert got[k][b] == ([] if want == ["[PAD]"] else want[:1]), (k, b)
    assert meta["reversed_batch"]["aux_targets"][2][0] == intended[2][2]  # record 2 first: its merged step is whole
