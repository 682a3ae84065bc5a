"""Latent reasoning as search (the paper's section 5), measured on ProsQA questions.

Forced thoughts: the same model with k = 0..K continuous thoughts before it must switch to
language; each generated path is classified (see `coconut.analysis.paths`).

Frontier values: after k thoughts, the language step that follows names its source node first
(prefix "Every" in the word rendering, nothing in the compact one). The probability the model gives
to each node's name there is that node's "value": how much the thoughts so far bet on standing at
that node. The frontier after k thoughts is the set of nodes k steps from the subject.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from coconut.config import DEFAULT_MAX_NEW_TOKENS
from coconut.data.graph import Graph
from coconut.analysis.paths import CATEGORIES, classify
from coconut.engine.special_tokens import SpecialIds
from coconut.data.curriculum import TokenizedRecord
from coconut.data.scoring import answer_correct


@dataclass
class Question:
    record: dict
    graph: Graph
    tokens: TokenizedRecord


def forced_prompt(question: list[int], k: int, ids: SpecialIds, eot_at_stage0: bool = True) -> list[int]:
    """`question <|start-latent|> <|latent|> * k <|end-latent|>`: exactly k thoughts, then language.

    With k = 0 the prompt follows the training's stage-0 form: without `<|end-latent|>` when the method
    was trained that way (`method.eot_at_stage0=false`)."""
    closing = [ids.end] if k > 0 or eot_at_stage0 else []
    return question + [ids.start] + [ids.latent] * k + closing


def _left_pad(rows: list[list[int]], pad_id: int):
    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


@torch.no_grad()
def forced_thoughts(engine, tokenizer, questions: list[Question], ks, ids: SpecialIds, marker: str,
                    batch_size: int = 64, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, progress: bool = True,
                    eot_at_stage0: bool = True) -> list[dict]:
    """Per k: accuracy, the share of each path category, mean language tokens; and each question's category."""
    from tqdm.auto import tqdm

    device = next(engine.parameters()).device
    out = []
    for k in tqdm(list(ks), desc="forced thoughts", disable=not progress, unit="k"):
        categories, correct, tokens = [], [], []
        for chunk in _batches(questions, batch_size):
            prompts = [forced_prompt(q.tokens.question, k, ids, eot_at_stage0) for q in chunk]
            input_ids, mask = _left_pad(prompts, engine.pad_id)
            gen = engine.generate(input_ids.to(device), mask.to(device), max_new_tokens=max_new_tokens)
            texts = tokenizer.batch_decode([s[:n].tolist() for s, n in zip(gen.sequences, gen.num_generated)],
                                           skip_special_tokens=True)
            for q, text in zip(chunk, texts):
                categories.append(classify(text, q.graph, q.record["answer"], marker))
                # Lenient: the analysis reads word-level ProsQA text, whose decoding spaces out punctuation.
                correct.append(answer_correct(text, q.record["answer"], marker, "lenient"))
            tokens += gen.language_tokens(engine.eos_id).tolist()  # without EOS, as the results table counts
        n = max(len(categories), 1)
        out.append({
            "k": k,
            "accuracy": sum(correct) / n,
            "language_tokens": sum(tokens) / n,
            "categories": {c: categories.count(c) / n for c in CATEGORIES},
            "per_question": categories,
        })
    return out


def name_tokens(tokenizer, names: list[str], prefix: str) -> tuple[list[int], dict[str, list[int]]]:
    """(prefix ids, each name's ids) as they appear in a step that starts `prefix name`."""
    def encode(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    head = encode(prefix) if prefix else []
    out = {}
    for name in names:
        full = encode(f"{prefix} {name}") if prefix else encode(name)
        if full[: len(head)] != head:  # a merge across the boundary: fall back to a separate encoding
            full = head + encode(f" {name}")
        out[name] = full[len(head):]
    return head, out


@torch.no_grad()
def frontier_values(engine, tokenizer, questions: list[Question], ks, ids: SpecialIds, prefix: str,
                    batch_size: int = 64, progress: bool = True) -> list[list[dict[int, float]]]:
    """values[i][j][node]: probability of `node`'s name after k = ks[j] thoughts and `prefix`, question i.

    A name of several tokens gets the product of its tokens' probabilities (teacher-forced).
    """
    from tqdm.auto import tqdm

    device = next(engine.parameters()).device
    values = [[{} for _ in ks] for _ in questions]
    tokenized = [name_tokens(tokenizer, q.graph.names, prefix) for q in questions]  # once, not once per k
    jobs = [(i, j) for j in range(len(ks)) for i in range(len(questions))]
    for chunk in tqdm(list(_batches(jobs, batch_size)), desc="frontier values", disable=not progress, unit="batch"):
        rows, owners = [], []  # one row per (question, k, name group)
        for i, j in chunk:
            q = questions[i]
            head, names = tokenized[i]
            prompt = forced_prompt(q.tokens.question, ks[j], ids) + head
            single = all(len(t) == 1 for t in names.values())
            if single:  # one row: the next-token distribution gives every name at once
                rows.append(prompt)
                owners.append((i, j, {q.graph.index[n]: t for n, t in names.items()}))
            else:
                for name, toks in names.items():
                    rows.append(prompt + toks[:-1])
                    owners.append((i, j, {q.graph.index[name]: toks}))
        for start in range(0, len(rows), batch_size):
            _score_rows(engine, rows[start : start + batch_size], owners[start : start + batch_size], values, device)
    return values


def _score_rows(engine, rows, owners, values, device) -> None:
    width = max(len(r) for r in rows)
    input_ids = torch.tensor([r + [engine.pad_id] * (width - len(r)) for r in rows], device=device)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
    hidden, _ = engine.hidden_states(input_ids, mask)
    for row, (r, (i, j, wanted)) in enumerate(zip(rows, owners)):
        # A name of m tokens is predicted by the row's last m positions (its first m - 1 tokens are in the row).
        longest = max(len(t) for t in wanted.values())
        logp = engine.lm_head(hidden[row, len(r) - longest : len(r)]).float().log_softmax(dim=-1)
        for node, toks in wanted.items():
            offset = longest - len(toks)
            values[i][j][node] = math.exp(sum(float(logp[offset + t, tok]) for t, tok in enumerate(toks)))


def frontier_summary(questions: list[Question], ks, values) -> dict:
    """Frontier values by k: cumulative top-1/2/3 mass, values against node height, correlation.

    At thought k only questions whose answer path has more than k steps count: for the others no
    language step follows, so there is no node to name."""
    summary = {"k": list(ks), "top_mass": {1: [], 2: [], 3: []}, "by_height": [], "correlation": [], "points": [],
               "questions": []}
    for j, k in enumerate(ks):
        tops = {1: [], 2: [], 3: []}
        heights, vals = [], []
        counted = 0
        for i, q in enumerate(questions):
            frontier, steps = q.graph.frontier(k), q.record.get("steps")
            if not frontier or (steps is not None and len(steps) <= k):
                continue
            counted += 1
            ranked = sorted((values[i][j].get(v, 0.0) for v in frontier), reverse=True)
            for n in tops:
                tops[n].append(sum(ranked[:n]))
            for v in frontier:
                heights.append(q.graph.height[v])
                vals.append(values[i][j].get(v, 0.0))
                summary["points"].append({"k": k, "question": i, "node": v, "height": q.graph.height[v],
                                          "value": vals[-1], "on_shortest_path": q.graph.on_shortest_path(v)})
        summary["questions"].append(counted)
        for n in tops:
            summary["top_mass"][n].append(sum(tops[n]) / len(tops[n]) if tops[n] else float("nan"))
        by_height = {}
        for h, v in zip(heights, vals):
            by_height.setdefault(h, []).append(v)
        summary["by_height"].append({h: sum(v) / len(v) for h, v in sorted(by_height.items())})
        summary["correlation"].append(_pearson(heights, vals))
    return summary


def _pearson(x: list[float], y: list[float]) -> float:
    n = len(x)
    if n < 2:
        return float("nan")
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")
