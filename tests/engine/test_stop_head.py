"""The learned stop: its targets, generation that decides thoughts on the fly, a separable toy case."""

import pytest
import torch

from coconut import LatentReasoner
from coconut.engine.stop_head import StopHead
from tests.helpers import END, EOS, LATENT, MAX_NEW, PAD, START, eos_prone_model, pad_batch, tiny_model

A, B = 20, 21  # question tokens of the toy case: A needs one thought, B three


def engine_with_stop(model, **kwargs):
    return LatentReasoner(model, latent_id=LATENT, start_id=START, end_id=END, eos_id=EOS, pad_id=PAD,
                          stop_classifier=True, **kwargs)


def test_stop_targets_mark_where_the_thoughts_end():
    engine = engine_with_stop(tiny_model("gpt2"))
    ids = torch.tensor([
        [9, 10, START, LATENT, LATENT, END, 11, EOS],
        [PAD, 9, 10, START, END, 11, 12, EOS],  # stage 0 with <eot>: stop before any thought
        [9, 10, 11, START, 12, 13, EOS, PAD],  # stage 0 without <eot>: no decision
    ])
    targets = StopHead.targets(ids, START, LATENT, END)
    assert targets[0].tolist() == [-1, -1, 0, 0, 1, -1, -1, -1]
    assert targets[1].tolist() == [-1, -1, -1, 1, -1, -1, -1, -1]
    assert targets[2].tolist() == [-1] * 8
    assert engine.stop_loss(torch.zeros(1, 8, 32), ids[2:]) is None


def _never_stop(engine):
    with torch.no_grad():
        engine.stop_head[-1].weight.zero_()
        engine.stop_head[-1].bias.fill_(-50.0)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_learned_stop_equals_fixed_thoughts_per_row(arch, monkeypatch):
    """Rows stopping after different numbers of thoughts, batched, equal prompts with those thoughts."""
    engine = engine_with_stop(eos_prone_model(arch))
    questions = [[9, 12, 7], [30, 22, 8, 15, 6], [11, 5], [17, 18, 19, 25]]
    wanted = torch.tensor([2, 0, 3, 1])
    calls = {"n": 0}

    def scheduled(hidden):  # decision k stops the rows that have k thoughts already
        k = calls["n"]
        calls["n"] += 1
        return (wanted <= k).float()

    monkeypatch.setattr(engine.stop_head, "probability", scheduled)
    ids, mask, _ = pad_batch([(q + [START], q) for q in questions], "right")
    learned = engine.generate(ids, mask, max_new_tokens=MAX_NEW, learned_stop=True, max_thoughts=5)
    assert learned.num_thoughts.tolist() == wanted.tolist()
    for row, q in enumerate(questions):
        fixed_prompt = q + [START] + [LATENT] * int(wanted[row]) + [END]
        fixed = engine.generate(torch.tensor([fixed_prompt]), max_new_tokens=MAX_NEW)
        n = int(learned.num_generated[row])
        assert learned.sequences[row, :n].tolist() == fixed.sequences[0].tolist()
        assert int(learned.num_forward_passes[row]) == 1 + int(wanted[row]) + n, \
            "prompt pass, one per thought, <eot>, then one per token but the last"


def test_max_thoughts_caps_a_classifier_that_never_stops():
    engine = engine_with_stop(eos_prone_model("llama"))
    _never_stop(engine)
    q = [9, 12, 7, 30]
    learned = engine.generate(torch.tensor([q + [START]]), max_new_tokens=MAX_NEW, learned_stop=True, max_thoughts=3)
    fixed = engine.generate(torch.tensor([q + [START, LATENT, LATENT, LATENT, END]]), max_new_tokens=MAX_NEW)
    assert learned.num_thoughts.tolist() == [3]
    assert torch.equal(learned.sequences, fixed.sequences)


def test_stop_classifier_learns_a_separable_toy_case():
    """A question with token A needs one thought, with B three: the classifier learns where to stop."""
    torch.manual_seed(0)
    engine = engine_with_stop(tiny_model("gpt2", seed=3))
    examples = []
    for i in range(16):
        kind, n = (A, 1) if i % 2 == 0 else (B, 3)
        filler = [5 + (i * 7 + j) % 10 for j in range(3)]
        examples.append((filler + [kind, START] + [LATENT] * n + [END, 9, EOS], None))
    ids, mask, _ = pad_batch([(t, t) for t, _ in examples], "right")
    optimizer = torch.optim.Adam(engine.stop_head.parameters(), lr=0.03)
    for _ in range(300):
        with torch.no_grad():
            hidden = engine(ids, mask).hidden
        loss = engine.stop_loss(hidden, ids)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.1
    # Generation decides on the fly, all questions in one batch, and stops where training said.
    questions = [t[: t.index(START) + 1] for t, _ in examples]
    ids, mask, _ = pad_batch([(q, q) for q in questions], "left")
    out = engine.generate(ids, mask, max_new_tokens=3, learned_stop=True, max_thoughts=6)
    assert out.num_thoughts.tolist() == [1 if i % 2 == 0 else 3 for i in range(16)]


def test_learned_stop_refuses_bad_prompts_and_engines():
    plain = LatentReasoner(tiny_model("gpt2"), latent_id=LATENT, start_id=START, end_id=END, eos_id=EOS, pad_id=PAD)
    with pytest.raises(ValueError, match="stop classifier"):
        plain.generate(torch.tensor([[9, START]]), learned_stop=True, max_thoughts=2)
    engine = engine_with_stop(tiny_model("gpt2"))
    with pytest.raises(ValueError, match="row 1 does not end with <|start-latent|>"):
        engine.generate(torch.tensor([[9, START], [9, 10]]), learned_stop=True, max_thoughts=2)


def test_stop_threshold_decides(monkeypatch):
    engine = engine_with_stop(eos_prone_model("gpt2"))
    monkeypatch.setattr(engine.stop_head, "probability", lambda hidden: torch.full((hidden.shape[0],), 0.6))
    prompt = torch.tensor([[9, 12, 7, START]])
    eager = engine.generate(prompt, max_new_tokens=2, learned_stop=True, max_thoughts=4, stop_threshold=0.5)
    patient = engine.generate(prompt, max_new_tokens=2, learned_stop=True, max_thoughts=4, stop_threshold=0.7)
    assert eager.num_thoughts.tolist() == [0] and patient.num_thoughts.tolist() == [4]
