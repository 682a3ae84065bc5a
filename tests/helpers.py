"""Tiny random models, ragged latent batches, engines over them and a naive no-cache reference for the tests.

Imported as `from tests.helpers import ...`: tests/ is a package, so pytest puts the repository root on sys.path.
"""

from __future__ import annotations

import torch

from coconut.engine.models import tiny_causal_lm
from coconut.engine.reasoner import LatentReasoner
from coconut.engine.reference import recompute_logits

VOCAB = 40
EOS, START, LATENT, END, PAD = 1, 2, 3, 4, 0
ORDINARY = range(5, VOCAB)  # token ids that are plain text
TOL = 1e-5  # engine against the naive recompute, float32
MAX_NEW = 10  # new tokens of the generation tests


def tiny_model(arch: str, seed: int = 0, vocab_size: int = VOCAB):
    """A tiny float32 causal LM with random weights (dropout off so passes are deterministic)."""
    torch.manual_seed(seed)
    if arch == "gpt2":
        model = tiny_causal_lm("gpt2", vocab_size=vocab_size, layers=2, hidden=32, heads=4, max_positions=128,
                               eos_id=EOS, dropout=0.0)
    elif arch in ("llama", "qwen2"):  # untied embeddings, grouped-query attention (Qwen2: biased q, k, v)
        model = tiny_causal_lm(arch, vocab_size=vocab_size, layers=2, hidden=32, heads=4, kv_heads=2, intermediate=64,
                               max_positions=128, eos_id=EOS, pad_id=PAD, tie_embeddings=False)
    else:
        raise ValueError(arch)
    return model.eval()


def engine_for(model, **kwargs) -> LatentReasoner:
    """The latent engine over a tiny model with the test vocabulary's special ids."""
    return LatentReasoner(model, latent_id=LATENT, start_id=START, end_id=END, eos_id=EOS, pad_id=PAD, **kwargs)


def grads(model) -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


def eos_prone_model(arch):
    """A random model nudged towards EOS, so that rows stop after different numbers of tokens."""
    model = tiny_model(arch, seed=7)
    with torch.no_grad():
        model.get_output_embeddings().weight[EOS] *= 3.0
        if arch == "llama":
            model.get_output_embeddings().weight[EOS] += 0.3 * model.get_output_embeddings().weight[10]
    return model


def make_example(gen: torch.Generator, question_len: int, thoughts: int, answer_len: int):
    """(tokens, labels) of `question <bot> <latent>*n <eot> answer <eos>`, labels on the answer."""
    def words(n):
        return torch.randint(ORDINARY.start, ORDINARY.stop, (n,), generator=gen).tolist()

    question = words(question_len)
    answer = words(answer_len) + [EOS]
    if thoughts > 0:
        marked = [START] + [LATENT] * thoughts + [END]
    else:
        marked = [START, END] if torch.rand((), generator=gen) < 0.5 else []
    tokens = question + marked + answer
    labels = [-100] * (len(question) + len(marked)) + answer
    return tokens, labels


def pad_batch(examples, side: str):
    """Stack (tokens, labels) pairs into padded ids, mask and labels, padding on `side`."""
    width = max(len(t) for t, _ in examples)
    ids, mask, labels = [], [], []
    for tokens, labs in examples:
        gap = width - len(tokens)
        if side == "left":
            ids.append([PAD] * gap + tokens); mask.append([0] * gap + [1] * len(tokens)); labels.append([-100] * gap + labs)
        else:
            ids.append(tokens + [PAD] * gap); mask.append([1] * len(tokens) + [0] * gap); labels.append(labs + [-100] * gap)
    return torch.tensor(ids), torch.tensor(mask), torch.tensor(labels)


def ragged_batch(seed: int, batch: int = 5, side: str = "right", max_thoughts: int = 4):
    gen = torch.Generator().manual_seed(seed)
    examples = []
    for _ in range(batch):
        q = int(torch.randint(3, 12, (), generator=gen))
        n = int(torch.randint(0, max_thoughts + 1, (), generator=gen))
        a = int(torch.randint(1, 6, (), generator=gen))
        examples.append(make_example(gen, q, n, a))
    return examples, pad_batch(examples, side)


def reference_forward(model, tokens: list[int], projection=None):
    """Logits of one unpadded example, recomputing the whole prefix from scratch for each thought."""
    return recompute_logits(model, tokens, LATENT, projection)


def reference_loss(model, examples, projection=None):
    """Mean next-token loss over all labelled tokens of the batch, example by example."""
    total, count, logits = 0.0, 0, []
    for tokens, labels in examples:
        out = reference_forward(model, tokens, projection)
        logits.append(out)
        targets = torch.tensor(labels[1:])
        keep = targets != -100
        total = total + torch.nn.functional.cross_entropy(out[:-1][keep], targets[keep], reduction="sum")
        count += int(keep.sum())
    return total / count, logits


def reference_greedy(model, tokens: list[int], max_new_tokens: int):
    """Greedy tokens for one prompt, recomputing everything (thoughts included) at every step."""
    out = []
    for _ in range(max_new_tokens):
        logits = reference_forward(model, tokens + out)[-1]
        logits[LATENT] = float("-inf")  # language mode never emits a thought
        token = int(logits.argmax())
        out.append(token)
        if token == EOS:
            break
    return out


def prompts(seed, count=7, max_thoughts=3):
    """Prompts `question <bot> <latent>*n <eot>` (or just a question) of random lengths and thoughts."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        q = int(torch.randint(2, 10, (), generator=gen))
        n = int(torch.randint(0, max_thoughts + 1, (), generator=gen))
        tokens, _ = make_example(gen, q, n, 0)
        out.append(tokens[:-1])  # the prompt ends after <|end-latent|> (or the question)
    return out


def check_against_recompute(engine, model, examples, batch, grads_of=grads):
    """Loss, logits and gradients of the engine on a padded batch equal the naive recompute's; returns both."""
    ids, mask, labels = batch
    out = engine(ids, mask, labels)
    out.loss.backward()
    got = grads_of(model)
    model.zero_grad()
    ref_loss, ref_logits = reference_loss(model, examples)
    ref_loss.backward()
    want = grads_of(model)
    assert torch.allclose(out.loss, ref_loss, atol=TOL, rtol=0)
    for row, logits in enumerate(ref_logits):
        real = mask[row].bool()
        assert torch.allclose(out.logits[row][real], logits, atol=TOL, rtol=0), f"row {row}"
    assert got.keys() == want.keys()
    for name in want:
        assert torch.allclose(got[name], want[name], atol=TOL, rtol=1e-4), name
    return out, got
