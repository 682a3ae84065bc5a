"""The LightningModule around `LatentReasoner`: loss, AdamW, batched generation and metrics."""

from __future__ import annotations

import math

import lightning as L
import torch
from torchmetrics import MaxMetric, MeanMetric

from coconut.config import RunConfig, stage_schedule
from coconut.data.curriculum import IGNORE_INDEX
from coconut.engine.reasoner import LatentReasoner
from coconut.data.scoring import answer_correct


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite: training stops, the last good checkpoint stays."""


class EvalMetrics(torch.nn.Module):
    """Accuracy, CoT exact match, generated tokens (the paper's count), thoughts and forward passes."""

    NAMES = ("acc", "cot_match", "tokens", "language_tokens", "thoughts", "passes")

    def __init__(self):
        super().__init__()
        for name in self.NAMES:
            setattr(self, name, MeanMetric())


class CoconutModule(L.LightningModule):
    def __init__(self, engine: LatentReasoner, tokenizer, cfg: RunConfig):
        super().__init__()
        self.engine, self.tokenizer, self.cfg = engine, tokenizer, cfg
        from coconut.train.datamodule import answer_marker

        self.marker = answer_marker(cfg)
        # The continuous decoding phase of soft decoders ends at the answer marker or EOS.
        marker_ids = tokenizer(self.marker.strip(), add_special_tokens=False)["input_ids"]
        self.leave_ids = tuple(marker_ids[:1]) + (engine.eos_id,)
        self.val_metrics, self.test_metrics = EvalMetrics(), EvalMetrics()
        self.val_loss, self.val_acc_best = MeanMetric(), MaxMetric()
        self.samples: list[dict] = []  # a few generations of the last validation, for TensorBoard
        from omegaconf import OmegaConf

        self.save_hyperparameters(OmegaConf.to_container(OmegaConf.structured(cfg)))

    def setup(self, stage: str) -> None:
        """Under FSDP (or trainer.lockstep=true) ranks must make equal decoder calls: see coconut.lockstep."""
        from lightning.pytorch.strategies import FSDPStrategy

        wanted = self.cfg.trainer.lockstep
        if wanted is None:
            wanted = isinstance(self.trainer.strategy, FSDPStrategy)
        if wanted and self.trainer.world_size > 1:
            from coconut.engine.lockstep import RankSync

            self.engine.sync = RankSync.from_process_group()

    def teardown(self, stage: str) -> None:
        self.engine.sync = None  # the process group goes away with the fit; a later test runs on one device

    @property
    def stage(self) -> int:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if dm is not None:
            return dm.current_stage()
        return stage_schedule(self.cfg).stage(self.current_epoch)

    def forward(self, input_ids, attention_mask=None, labels=None):
        return self.engine(input_ids, attention_mask, labels)

    # -- training -------------------------------------------------------------------------------

    def training_step(self, batch, batch_idx):
        out = self.engine(batch["input_ids"], batch["attention_mask"], batch["labels"])
        loss = out.loss
        if self.engine.stop_head is not None:
            stop_loss = self.engine.stop_loss(out.hidden, batch["input_ids"])
            if stop_loss is not None:
                self.log("train/stop_loss", stop_loss, batch_size=batch["input_ids"].shape[0])
                loss = loss + self.cfg.model.stop_loss_weight * stop_loss
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"the training loss became {loss.item()} at global step {self.global_step} "
                f"(epoch {self.current_epoch}, curriculum stage {self.stage}); stopping. The last good checkpoint "
                "is kept; try a lower optim.lr or optim.grad_clip"
            )
        self.log("train/loss", out.loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    # -- evaluation -----------------------------------------------------------------------------

    def _evaluate(self, batch, metrics: EvalMetrics, keep_samples: bool):
        gen = self.generate(batch["prompt_input_ids"], batch["prompt_attention_mask"])
        texts = self.tokenizer.batch_decode(
            [seq[:n].tolist() for seq, n in zip(gen.sequences, gen.num_generated)], skip_special_tokens=True
        )
        correct = torch.tensor([answer_correct(t, a, self.marker) for t, a in zip(texts, batch["answers"])],
                               dtype=torch.float32, device=self.device)
        targets = batch["prompt_target_ids"]
        cot = []
        for row, (seq, n) in enumerate(zip(gen.sequences, gen.num_generated)):
            want = targets[row][targets[row] != IGNORE_INDEX]
            cot.append(float(int(n) == len(want) and torch.equal(seq[:n], want)))
        metrics.acc.update(correct)
        metrics.cot_match.update(torch.tensor(cot, device=self.device))
        metrics.tokens.update(gen.paper_token_count.float())
        metrics.language_tokens.update(gen.num_generated.float())
        metrics.thoughts.update(gen.num_thoughts.float())
        metrics.passes.update(gen.num_forward_passes.float())
        if keep_samples and len(self.samples) < self.cfg.eval.samples_to_log:
            prompts = self.tokenizer.batch_decode(batch["prompt_input_ids"], skip_special_tokens=False)
            for p, t, a, c in zip(prompts, texts, batch["answers"], correct.tolist()):
                if len(self.samples) < self.cfg.eval.samples_to_log:
                    self.samples.append({"prompt": p.replace(self.tokenizer.pad_token, "").strip(),
                                         "generated": t, "answer": a, "correct": bool(c)})

    def generate(self, input_ids, attention_mask):
        """Generation as the config asks: decoding rule, fixed or learned number of thoughts."""
        e = self.cfg.eval
        learned = e.thoughts == "learned"
        if learned:
            from coconut.engine.alignment import prompts_until_start

            input_ids, attention_mask = prompts_until_start(input_ids, attention_mask, self.engine.start_id,
                                                            self.engine.pad_id)
        max_thoughts = self.cfg.method.max_latent_stage * self.cfg.method.thoughts_per_step
        return self.engine.generate(input_ids, attention_mask, max_new_tokens=e.max_new_tokens, decode=self.cfg.decode,
                                    learned_stop=learned, max_thoughts=max_thoughts, stop_threshold=e.stop_threshold,
                                    leave_ids=self.leave_ids)

    def validation_step(self, batch, batch_idx):
        out = self.engine(batch["input_ids"], batch["attention_mask"], batch["labels"])
        self.val_loss.update(out.loss)
        self._evaluate(batch, self.val_metrics, keep_samples=True)

    def on_validation_epoch_start(self):
        self.samples = []

    def on_validation_epoch_end(self):
        self._log_metrics("val", self.val_metrics)
        self.log("val/loss", self.val_loss.compute(), sync_dist=False)
        self.val_loss.reset()
        acc = self.trainer.callback_metrics["val/acc"]
        if not self.trainer.sanity_checking:
            self.val_acc_best.update(acc)
            self.log("val/acc_best", self.val_acc_best.compute())
        self.log("curriculum/eval_stage", float(self.stage))

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, self.test_metrics, keep_samples=False)

    def on_test_epoch_end(self):
        self._log_metrics("test", self.test_metrics)

    def _log_metrics(self, prefix: str, metrics: EvalMetrics):
        for name in metrics.NAMES:
            metric = getattr(metrics, name)
            self.log(f"{prefix}/{name}", metric.compute(), prog_bar=name in ("acc", "tokens"))
            metric.reset()

    # -- optimisation ---------------------------------------------------------------------------

    def configure_optimizers(self):
        o = self.cfg.optim
        decay, no_decay = [], []
        for name, p in self.engine.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=o.lr, betas=tuple(o.betas),
        )
        if o.schedule == "constant" and o.warmup_steps == 0:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _lr_factor(self, step: int) -> float:
        """Warmup then constant or cosine; restarted at each stage when the optimizer is reset there."""
        o, t = self.cfg.optim, self.cfg.trainer
        per_epoch = max(1, self.trainer.num_training_batches // max(1, t.accumulate_grad_batches))
        if o.reset_each_stage:
            schedule = stage_schedule(self.cfg)
            stage = schedule.stage(step // per_epoch)
            step -= schedule.start(stage) * per_epoch
            span = per_epoch * schedule.length(stage)
        else:
            span = per_epoch * t.max_epochs
        if o.warmup_steps and step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        if o.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - o.warmup_steps) / max(1, span - o.warmup_steps))
        return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
