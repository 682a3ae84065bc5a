"""The transition diagnostics' pure parts against hand-worked cases: language steps counted in a generation, the
per-stage entry/exit summary of known rows, and the figure drawn from it."""

import pytest

from coconut.analysis.transitions import count_steps, stage_summary, transitions_figure
from coconut.config import MethodConfig
from coconut.data.curriculum import latent_plan
from coconut.data.generators import generate
from coconut.data.tokenize import COMPACT_FORMAT, PAPER_FORMAT


@pytest.mark.parametrize("text, fmt, steps", [
    # The paper's format: one step a line, the answer after "### ".
    ("Every wumpus is a yumpus.\nEvery yumpus is a zumpus.\n### Alex is a zumpus.", PAPER_FORMAT, 2),
    ("<<3*4=12>>\n<<12+3=15>>\n<<15/5=3>>\n### 3", PAPER_FORMAT, 3),
    ("### 3", PAPER_FORMAT, 0),  # the answer alone: every step latent
    ("\n\n### 3", PAPER_FORMAT, 0),  # blank lines are no steps
    ("Every wumpus is a yumpus.\nEvery yum", PAPER_FORMAT, 2),  # cut by the token budget, no answer: still written
    ("<<1+1=2>>\n### 2\n<<2+2=4>>\n", PAPER_FORMAT, 1),  # what follows the answer marker is not reasoning
    # The compact format writes its steps on one line, each closed by ";" (sentences) or "." (phrases).
    ("p5 c21 ; c21 c0 ; = c0", COMPACT_FORMAT, 2),
    ("every c1 is a c7 . p2 is a c1 . = c7", COMPACT_FORMAT, 2),
    ("= c0", COMPACT_FORMAT, 0),
    ("= = = = = =", COMPACT_FORMAT, 0),
    ("p5 c21 ; = c0 ; c2 ;", COMPACT_FORMAT, 1),
    ("", COMPACT_FORMAT, 0),
])
def test_steps_are_counted_before_the_answer_marker(text, fmt, steps):
    assert count_steps(text, fmt) == steps


def target_text(record, removed, fmt):
    """What a sample's target reads as text (coconut.data.tokenize joins the parts the same way)."""
    return "".join(step + fmt.step_suffix for step in record["steps"][removed:]) + fmt.answer_prefix + record["answer"]


@pytest.mark.parametrize("generator, render, fmt", [
    ("prosqa-mini", None, COMPACT_FORMAT), ("prosqa-mini", "phrase", COMPACT_FORMAT),
    ("prosqa", None, PAPER_FORMAT), ("prontoqa", None, PAPER_FORMAT),
])
def test_a_stage_target_holds_the_steps_the_curriculum_leaves_in_language(generator, render, fmt):
    # The count of the target is the logged "expected" figure: it must be the curriculum's rule, max(0, n - k)
    # up to max_latent_stage and nothing after it.
    method = MethodConfig(name="coconut", max_latent_stage=3)
    records = generate(generator, 12, seed=4, render=render)
    for record in records:
        n = len(record["steps"])
        for stage in range(6):
            removed, _ = latent_plan(n, stage, method)
            want = max(0, n - stage) if stage <= 3 else 0
            assert count_steps(target_text(record, removed, fmt), fmt) == want, (record["steps"], stage)


def rows():
    """A run's rows as transitions.csv gives them back (strings; a column empty where a row has no value)."""
    def row(kind, epoch, step, stage, acc, tokens, cot, explicit, expected, norm=""):
        return {"kind": kind, "epoch": str(epoch), "step": str(step), "stage": str(stage), "acc": str(acc),
                "tokens": str(tokens), "cot_match": str(cot), "explicit_steps": str(explicit),
                "expected_steps": str(expected), "questions": "20", "thoughts/norm": str(norm)}

    return [row("val", 0, 3, 0, 0.5, 10.0, 0.4, 2.0, 2.0), row("val", 1, 7, 0, 0.8, 9.0, 0.7, 2.0, 2.0),
            row("entry", 2, 8, 1, 0.3, 12.0, 0.1, 1.5, 1.0), row("val", 2, 11, 1, 0.6, 7.0, 0.5, 1.2, 1.0, 2.5),
            row("val", 3, 15, 1, 0.7, 6.0, 0.6, 1.0, 1.0, 3.0), row("val", 4, 19, 2, 0.65, 4.0, 0.0, 0.0, 0.0, 4.0)]


def test_each_stage_has_its_entry_exit_drop_and_recovery():
    summary = stage_summary(rows())
    assert [s["stage"] for s in summary] == [0, 1, 2]
    first, second, third = summary
    # Stage 0: no entry (nothing before it), its exit is its last validation (step 7).
    assert (first["entry_acc"], first["exit_acc"], first["exit_step"], first["drop"], first["recovery"]) == \
        (None, 0.8, 7, None, None)
    assert (first["validations"], first["exit_cot_match"], first["thoughts"]) == (2, 0.7, {})
    # Stage 1: entered at 0.3 from stage 0's exit of 0.8 (a drop of 0.5), left at 0.7 (a recovery of 0.4).
    assert second["entry_acc"] == 0.3 and second["entry_tokens"] == 12.0 and second["entry_step"] == 8
    assert second["entry_explicit_steps"] == 1.5 and second["entry_expected_steps"] == 1.0
    assert second["exit_acc"] == 0.7 and second["exit_tokens"] == 6.0 and second["exit_step"] == 15
    assert second["drop"] == pytest.approx(0.5) and second["recovery"] == pytest.approx(0.4)
    assert (second["exit_explicit_steps"], second["exit_expected_steps"], second["exit_cot_match"]) == (1.0, 1.0, 0.6)
    assert second["thoughts"] == {"thoughts/norm": 3.0}, "the thought figures of the stage's last validation"
    assert second["entry_questions"] == 20
    # Stage 2: no entry row (the switch's validation was skipped), so no drop and no recovery.
    assert (third["entry_acc"], third["drop"], third["recovery"], third["exit_acc"]) == (None, None, None, 0.65)
    assert third["thoughts"] == {"thoughts/norm": 4.0}


def test_no_rows_no_stages():
    assert stage_summary([]) == []


def test_the_figure_draws_entry_and_exit_per_stage_and_each_thought_figure():
    fig = transitions_figure(stage_summary(rows()), title="run")
    axes = fig.axes
    lines = {(ax.get_title(), line.get_label()): (list(line.get_xdata()), list(line.get_ydata()))
             for ax in axes for line in ax.get_lines()}
    acc = "validation accuracy: entry and exit"
    assert lines[(acc, "exit (last validation)")] == ([0, 1, 2], [0.8, 0.7, 0.65])
    assert lines[(acc, "entry (new inputs, previous weights)")] == ([1], [0.3])
    tokens = "generated tokens: entry and exit"
    assert lines[(tokens, "exit (last validation)")] == ([0, 1, 2], [9.0, 6.0, 4.0])
    steps = "explicit steps against the stage's"
    assert lines[(steps, "written (exit)")] == ([0, 1, 2], [2.0, 1.0, 0.0])
    assert lines[(steps, "left in language by the stage")] == ([0, 1, 2], [2.0, 1.0, 0.0])
    assert lines[("CoT match", "CoT match (exit)")] == ([0, 1, 2], [0.7, 0.6, 0.0])
    assert list(lines[("thoughts/norm", "_child0")][1]) == [3.0, 4.0]
    assert fig._suptitle.get_text() == "run"
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_thought_figures_beyond_the_panels_are_named_in_the_title():
    summary = stage_summary(rows())
    for s in summary:
        s["thoughts"] = {f"thoughts/p{i}": 1.0 for i in range(5)}
    fig = transitions_figure(summary, max_thought_panels=2)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title().startswith("thoughts/")]
    assert titles == ["thoughts/p0", "thoughts/p1"] and "3 thoughts/ values not drawn" in fig._suptitle.get_text()
    import matplotlib.pyplot as plt

    plt.close(fig)
