"""Read a question's continuous thoughts through the LM head (`coconut think`, the end of `make demo`).

A thought is the last hidden state fed back as the next input; the LM head turns that same state into a
distribution over the vocabulary. The paper (Figure 2 and section 5) reads thoughts this way and finds that
one thought holds several candidate nodes of the graph at once. For ProsQA-style records the reading marks
each name with its distance from the question's subject, and under each thought shows its search frontier: every
node at the depth the thought stands for with its probability, and the mass on each depth
(`coconut.analysis.frontier`, which states the depth convention).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from coconut.config import DEFAULT_MAX_NEW_TOKENS
from coconut.analysis.frontier import LEGEND, Frontier, frontier_lines, graph_of, read_frontiers
from coconut.analysis.search import forced_prompt
from coconut.data.graph import Graph
from coconut.data.scoring import answer_correct, as_decoded, extract_answer
from coconut.engine.special_tokens import SpecialIds


@dataclass
class ThoughtReading:
    """The LM head's most likely tokens for one thought, and where those names sit in the graph."""

    top: list[tuple[str, float]]  # (token, probability), most likely first
    distance: dict[str, int] = field(default_factory=dict)  # token -> steps from the subject (graph names only)


@dataclass
class Thinking:
    question: str
    thoughts: list[ThoughtReading]
    generated: str  # the language the model wrote after its thoughts
    answer: str | None  # what the scoring rule reads as its answer
    gold: str | None = None  # the record's answer, when the question comes from the data
    correct: bool | None = None
    frontier: list[Frontier] = field(default_factory=list)  # one per thought for a graph question, else empty
    # Step supervision's auxiliary decoder, where the run has one: (the thoughts it read, 1-based, the step it
    # writes from them).
    decoded: list[tuple[list[int], str]] = field(default_factory=list)
    # The thoughts' geometry (coconut.analysis.thought_stats, for this one question): each thought's norm against
    # the question's token embeddings, and the mean cosine between its thoughts (near 1: collapsed into one state).
    norm_ratios: list[float] = field(default_factory=list)
    cos_within: float | None = None


@torch.no_grad()
def read_states(engine, tokenizer, hidden: torch.Tensor, top: int = 5, graph: Graph | None = None) -> list[ThoughtReading]:
    """The LM head's `top` tokens for each of `hidden`'s (n, d) last hidden states, one reading per thought.

    `hidden[j]` is the state the engine feeds back as thought j (before any projection or scale): what the model
    would say at that column if it spoke. With a `graph`, graph names carry their distance from the subject."""
    readings = []
    for row in engine.lm_head(hidden).float().softmax(dim=-1):
        values, indices = row.topk(min(top, row.numel()))
        tokens = tokenizer.convert_ids_to_tokens(indices.tolist())
        distance = {}
        if graph is not None:
            distance = {t: graph.distance[graph.index[t]] for t in tokens
                        if t in graph.index and graph.index[t] in graph.distance}
        readings.append(ThoughtReading([(t, float(v)) for t, v in zip(tokens, values)], distance))
    return readings


@torch.no_grad()
def read_thoughts(engine, tokenizer, question: str, question_suffix: str, marker: str, thoughts: int | None, top: int = 5,
                  eot_at_stage0: bool = True, record: dict | None = None, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                  scoring: str = "release", thoughts_per_step: int = 1, step_reader=None) -> Thinking:
    """Run `question <bot> <thought> x thoughts <eot>`, read each thought, then generate the answer.

    Thought j is computed at the position before its slot (`<bot>` for the first), so its reading is the LM
    head at that position: the distribution the fed-back state would give if it were read as a token.
    thoughts=None: the question alone, without latent markers (a run of a method that has none, as CoT).
    A `record` with a graph also gets each thought's frontier; `thoughts_per_step` (the run's c) sets the depth
    each thought stands for. `step_reader`, given the thoughts' states (n, d), returns the auxiliary decoder's
    reading [(thoughts read, 1-based; the step written)] (coconut.cli.think builds it from the run's decoder)."""
    ids = SpecialIds.from_tokenizer(tokenizer)
    question_ids = tokenizer(question + question_suffix, add_special_tokens=True)["input_ids"]
    prompt = question_ids if thoughts is None else forced_prompt(question_ids, thoughts, ids, eot_at_stage0)
    device = next(engine.parameters()).device
    input_ids = torch.tensor([prompt], device=device)
    mask = torch.ones_like(input_ids)
    engine.eval()
    readings, frontier = [], []
    if thoughts:
        hidden, _ = engine.hidden_states(input_ids, mask)
        start = len(question_ids)  # the <bot> column: it computes the first thought
        states = hidden[0, start : start + thoughts]
        readings = read_states(engine, tokenizer, states, top, graph_of(record))
        frontier = read_frontiers(engine, tokenizer, states, record, thoughts_per_step)
        geometry = _geometry(engine, input_ids[:, :start], engine.thought_embedding(states))
    gen = engine.generate(input_ids, mask, max_new_tokens=max_new_tokens)
    n = int(gen.num_generated[0])
    text = tokenizer.decode(gen.sequences[0, :n].tolist(), skip_special_tokens=True)
    found = extract_answer(text, marker, scoring)  # as scoring reads it: around it, spaces do not count
    out = Thinking(question, readings, text.strip(), None if found is None else found.strip(), frontier=frontier)
    if thoughts:
        out.norm_ratios, out.cos_within = geometry
    if thoughts and step_reader is not None:
        out.decoded = step_reader(states)
    if record is not None:
        out.gold = as_decoded(tokenizer, str(record["answer"]))  # in the spacing generations decode to
        out.correct = answer_correct(text, out.gold, marker, scoring)
    return out


def _geometry(engine, question_ids: torch.Tensor, fed: torch.Tensor) -> tuple[list[float], float | None]:
    from coconut.analysis.thought_stats import thought_stats

    token_norm = float(engine.embed(question_ids).float().norm(dim=-1).mean())
    stats = thought_stats(fed.unsqueeze(0), torch.ones(1, len(fed), dtype=torch.bool), token_norm)
    ratios = [float(n) / token_norm for n in fed.float().norm(dim=-1)] if token_norm > 0 else []
    return ratios, stats.get("thoughts/cos_within")


def reading_cells(reading: ThoughtReading) -> list[str]:
    """`token probability [distance]` for each of a reading's top tokens, most likely first."""
    cells = []
    for token, p in reading.top:
        where = f" [{reading.distance[token]} from subject]" if token in reading.distance else ""
        cells.append(f"{token} {p:.2f}{where}")
    return cells


def format_thinking(t: Thinking) -> str:
    """The reading as lines of text: one line per thought (with its frontier under it for a graph question), then
    the answer."""
    lines = [f"question: {t.question}"]
    if not t.thoughts:
        lines.append("(no continuous thoughts: the model reasons in language)")
    under = frontier_lines(t.frontier) if t.frontier else []
    if under:
        lines += LEGEND
    for j, reading in enumerate(t.thoughts, 1):
        lines.append(f"thought {j}: " + " | ".join(reading_cells(reading)))
        if j <= len(under):
            lines.append(under[j - 1])
    if t.norm_ratios:
        within = "" if t.cos_within is None else f"; mean cosine between thoughts {t.cos_within:.2f} (1: one state)"
        lines.append("geometry: norms / token embedding norm " + " ".join(f"{r:.2f}" for r in t.norm_ratios) + within)
    for read, step in t.decoded:
        lines.append(f"decoder reads thought{'s' if len(read) > 1 else ''} {'+'.join(map(str, read))}: {step}")
    lines.append(f"generated: {t.generated}")
    answer = "(no answer marker)" if t.answer is None else t.answer.strip()
    if t.gold is not None:
        lines.append(f"answer: {answer} (gold: {t.gold}: {'right' if t.correct else 'wrong'})")
    else:
        lines.append(f"answer: {answer}")
    return "\n".join(lines)
