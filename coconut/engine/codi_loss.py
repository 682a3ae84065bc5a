"""CODI's training loss (Shen et al. 2025) on the latent engine, as its release computes it (zhenyi4/codi).

One model, two readings of each record in one step:
- the teacher: an ordinary forward over `question CoT answer EOS`, cross entropy on the CoT and the answer;
- the student: the latent forward over `question <bot> <latent>*n <eot> answer EOS` (the engine's cached thought
  passes, the projection on every fed-back state), cross entropy on the answer;
- the distillation: at the token before the answer (":" of "The answer is:" on GPT-2) the student's hidden state of
  every layer (the embeddings' output included, the last one after the final norm, as Hugging Face returns them)
  is pulled toward the teacher's, detached: smooth L1 (beta 1) or squared error, each layer's divided by the
  standard deviation of the teacher's states there when `distill_loss_div_std` (squared error: by its square),
  averaged over layers.

loss = student CE + distill_loss_factor x distillation + ref_loss_factor x teacher CE. The release takes the
distillation targets from a second teacher pass without gradients; with dropout on, the two passes see different
masks, so this does the same (two teacher passes) while the model trains with dropout, and one pass otherwise.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F

from coconut.engine.loss import causal_lm_loss


@contextmanager
def capturing_layers(engine):
    """Inside, the engine keeps every layer's hidden states of its last decoder call (its final pass)."""
    box: list = []
    engine._layer_capture = box
    try:
        yield box
    finally:
        engine._layer_capture = None


def student_forward(engine, input_ids, attention_mask, positions):
    """The latent forward's logits (caller's columns) and every layer's hidden state at `positions` (B,), which
    must fall in the final pass (after the last thought): a list of (B, d)."""
    with capturing_layers(engine) as box:
        passes = engine.run_passes(input_ids, attention_mask)
    layers = box[0]
    start = passes.hidden.shape[1] - layers[0].shape[1]  # the final pass covers the last columns
    rows = torch.arange(input_ids.shape[0], device=input_ids.device)
    index = passes.layout.column[rows, positions] - start
    if (index < 0).any():
        raise ValueError("the distillation position must follow the thoughts (it is the token before the answer)")
    logits = engine.lm_head(passes.in_caller_columns())
    return logits, [h[rows, index] for h in layers], passes


def teacher_forward(engine, input_ids, attention_mask, positions, grad: bool = True):
    """The plain forward's logits and every layer's hidden state at `positions`."""
    with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
        out = engine.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    rows = torch.arange(input_ids.shape[0], device=input_ids.device)
    return out.logits, [h[rows, positions] for h in out.hidden_states]


def distillation(student: list[torch.Tensor], teacher: list[torch.Tensor], kind: str = "smooth_l1",
                 div_std: bool = True) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The mean over layers of each layer's distance (and the per-layer values), the teacher detached."""
    per_layer = []
    for s, t in zip(student, teacher):
        t = t.detach()
        s = s.to(t.dtype)
        if kind == "smooth_l1":
            value = F.smooth_l1_loss(s, t, beta=1.0)
        elif kind == "l2":
            value = F.mse_loss(s, t)
        else:
            raise ValueError(f"distill_loss_type must be smooth_l1 or l2, got {kind!r}")
        if div_std:
            std = t.std()
            value = value / std if kind == "smooth_l1" else value / std / std
        per_layer.append(value)
    return torch.stack(per_layer).mean(), per_layer


def has_dropout(model) -> bool:
    return model.training and any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules())


def codi_loss(engine, batch: dict, cfg) -> dict[str, torch.Tensor]:
    """The named terms of CODI's loss on a collated batch (coconut.data.collate: the student's `input_ids`,
    `attention_mask`, `labels`, `distill`; the teacher's `teacher_*`), the total under "loss", and the student's
    last hidden states under "hidden"."""
    logits, student_states, passes = student_forward(engine, batch["input_ids"], batch["attention_mask"],
                                                     batch["distill"])
    student_ce = causal_lm_loss(logits, batch["labels"])
    t_ids, t_mask, t_pos = batch["teacher_input_ids"], batch["teacher_attention_mask"], batch["teacher_distill"]
    t_logits, t_states = teacher_forward(engine, t_ids, t_mask, t_pos)
    if has_dropout(engine.model):  # the release's targets come from a pass of their own, without gradients
        _, t_states = teacher_forward(engine, t_ids, t_mask, t_pos, grad=False)
    teacher_ce = causal_lm_loss(t_logits, batch["teacher_labels"])
    distill, per_layer = distillation(student_states, t_states, cfg.distill_loss_type, cfg.distill_loss_div_std)
    loss = student_ce + cfg.distill_loss_factor * distill + cfg.ref_loss_factor * teacher_ce
    if passes.idle is not None:
        loss = loss + passes.idle
    return {"loss": loss, "student_ce": student_ce, "teacher_ce": teacher_ce, "distill": distill,
            **{f"distill_layer{j}": v.detach() for j, v in enumerate(per_layer)},
            "hidden": passes.in_caller_columns()}  # the student's last hidden states, for added losses
