"""The LightningModule around `LatentReasoner`: the loss, AdamW, batched generation and its metrics.

It is handed its engine, optimiser settings and generation settings, not the whole config; the
curriculum stage it reads from the data module that owns it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightning as L
import torch
from torchmetrics import MaxMetric, MeanMetric

from coconut.config import DEFAULT_MAX_NEW_TOKENS, DecodeConfig, OptimConfig, RunConfig, StageSchedule
from coconut.data.tokenize import TEXT_FORMATS
from coconut.engine.alignment import prompts_until_start
from coconut.engine.loss import IGNORE_INDEX
from coconut.methods.base import entry_point
from coconut.engine.reasoner import LatentReasoner
from coconut.train.metrics import EvalMetrics, correct_answers, cot_matches
from coconut.train.optim import build_optimizer, lr_factor


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite: training stops, the last good checkpoint stays."""


@dataclass
class GenerationSettings:
    """How validation and test generate and score."""

    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    learned_stop: bool = False  # each row thinks until the stop head says stop (else the stage's thoughts)
    max_thoughts: int = 0  # the most a learned stop may take
    stop_threshold: float = 0.5
    answer_marker: str = "### "
    scoring: str = "release"  # see coconut.data.scoring
    samples_to_log: int = 4

    @classmethod
    def from_config(cls, cfg: RunConfig) -> "GenerationSettings":
        e = cfg.eval
        return cls(max_new_tokens=e.max_new_tokens, decode=cfg.decode, learned_stop=e.thoughts == "learned",
                   max_thoughts=cfg.method.max_thoughts, stop_threshold=e.stop_threshold,
                   answer_marker=TEXT_FORMATS[cfg.data.text_format].answer_prefix, scoring=e.scoring,
                   samples_to_log=e.samples_to_log)


class CoconutModule(L.LightningModule):
    def __init__(self, engine: LatentReasoner, tokenizer, optim: OptimConfig, schedule: StageSchedule,
                 generation: GenerationSettings, stop_loss_weight: float = 1.0, lockstep: bool | None = None,
                 method_loss: str | None = None, method=None, step_decoder=None):
        super().__init__()
        # Step supervision's auxiliary decoder (coconut.engine.step_decoder): trained here, never exported.
        self.step_decoder = step_decoder
        # The method's own training loss ("module:function", coconut.methods.Method.loss) and its config.
        self.method_loss, self.method = entry_point(method_loss), method
        self.engine, self.tokenizer = engine, tokenizer
        self.optim, self.schedule, self.generation = optim, schedule, generation
        self.stop_loss_weight, self.lockstep = stop_loss_weight, lockstep
        self.val_metrics, self.test_metrics = EvalMetrics(), EvalMetrics()
        self.val_loss, self.val_acc_best = MeanMetric(), MaxMetric()
        self.samples: list[dict] = []  # a few generations of the last validation, for TensorBoard
        # The continuous decoding phase of soft decoders ends at the answer marker or EOS.
        marker_ids = tokenizer(generation.answer_marker.strip(), add_special_tokens=False)["input_ids"]
        self.leave_ids = tuple(marker_ids[:1]) + (engine.eos_id,)
        self.answer_ids = tuple(marker_ids)  # what a Soft Thinking cold stop writes so that the model answers

    def setup(self, stage: str) -> None:
        """Under FSDP (or trainer.lockstep=true) ranks must make equal decoder calls: see coconut.engine.lockstep."""
        from lightning.pytorch.strategies import FSDPStrategy

        wanted = self.lockstep
        if wanted is None:
            wanted = isinstance(self.trainer.strategy, FSDPStrategy)
        if wanted and self.trainer.world_size > 1:
            from coconut.engine.lockstep import RankSync

            self.engine.sync = RankSync.from_process_group()

    def teardown(self, stage: str) -> None:
        self.engine.sync = None  # the process group goes away with the fit; a later test runs on one device

    @property
    def stage(self) -> int:
        """The curriculum stage now, as the data module has it (the schedule's when there is none)."""
        try:
            datamodule = self.trainer.datamodule
        except RuntimeError:  # not attached to a Trainer
            datamodule = None
        return datamodule.stage if datamodule is not None else self.schedule.stage(self.current_epoch)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        from coconut.train.checkpoints import STAGE_KEY

        checkpoint[STAGE_KEY] = self.stage  # so evaluating the checkpoint later uses the stage it trained at

    def forward(self, input_ids, attention_mask=None, labels=None):
        return self.engine(input_ids, attention_mask, labels)

    # -- training -------------------------------------------------------------------------------

    def training_step(self, batch, batch_idx):
        if self.method_loss is not None:
            return self._method_step(batch)
        out = self.engine(batch["input_ids"], batch["attention_mask"], batch["labels"])
        loss = out.loss
        if self.engine.stop_head is not None:
            stop_loss = self.engine.stop_loss(out.hidden, batch["input_ids"])
            if stop_loss is not None:
                self.log("train/stop_loss", stop_loss, batch_size=batch["input_ids"].shape[0])
                loss = loss + self.stop_loss_weight * stop_loss
        loss = loss + self._step_loss(batch, out.hidden)
        self._check_finite(loss)
        self.log("train/loss", out.loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def _method_step(self, batch):
        terms = self.method_loss(self.engine, batch, self.method)
        hidden = terms.pop("hidden", None)  # the latent forward's last hidden states, for the step loss
        loss = terms["loss"] = terms["loss"] + self._step_loss(batch, hidden)
        self._check_finite(loss)
        size = batch["input_ids"].shape[0]
        for name, value in terms.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss", batch_size=size)
        return loss

    def _step_loss(self, batch, hidden):
        """Step supervision's weighted loss (zero without it), logged with each thought's."""
        if self.step_decoder is None or "step_sources" not in batch:
            return 0.0
        loss, per_thought = self.step_decoder(self.engine, hidden, batch["step_sources"], batch["step_targets"])
        size = batch["input_ids"].shape[0]
        self.log("train/step_loss", loss, batch_size=size)
        for t, value in enumerate(per_thought.detach()):
            self.log(f"train/step_loss_thought{t}", value, batch_size=size)
        return self.method.step_loss_weight * loss

    def _check_finite(self, loss) -> None:
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"the training loss became {loss.item()} at global step {self.global_step} "
                f"(epoch {self.current_epoch}, curriculum stage {self.stage}); stopping. The last good checkpoint "
                "is kept; try a lower optim.lr or optim.grad_clip"
            )

    # -- evaluation -----------------------------------------------------------------------------

    def score_batch(self, batch, metrics: EvalMetrics, generation: GenerationSettings | None = None,
                    keep_samples: bool = False) -> list[str]:
        """Generate for a batch's prompts and add the scores to `metrics` (under other settings when given); returns
        the generated texts."""
        settings = generation or self.generation
        gen = self.generate(batch["prompt_input_ids"], batch["prompt_attention_mask"], settings)
        texts = self.tokenizer.batch_decode(
            [seq[:n].tolist() for seq, n in zip(gen.sequences, gen.num_generated)], skip_special_tokens=True
        )
        correct = correct_answers(texts, batch["answers"], settings.answer_marker, self.device, settings.scoring)
        weights = batch.get("weights")  # 0 for a question repeated to even out the ranks: it counts once
        weights = weights.to(self.device) if weights is not None else torch.ones_like(correct)
        metrics.update(gen, correct, cot_matches(gen, batch["prompt_target_ids"]).to(self.device), self.engine.eos_id,
                       weights)
        if keep_samples and len(self.samples) < settings.samples_to_log:
            prompts = self.tokenizer.batch_decode(batch["prompt_input_ids"], skip_special_tokens=False)
            for p, t, a, c, w in zip(prompts, texts, batch["answers"], correct.tolist(), weights.tolist()):
                if len(self.samples) < settings.samples_to_log and w > 0:
                    self.samples.append({"prompt": p.replace(self.tokenizer.pad_token, "").strip(),
                                         "generated": t, "answer": a, "correct": bool(c)})
        return texts

    def generate(self, input_ids, attention_mask, settings: GenerationSettings | None = None):
        """Generation with a decoding rule and a fixed or learned number of thoughts."""
        s = settings or self.generation
        if s.learned_stop:
            input_ids, attention_mask = prompts_until_start(input_ids, attention_mask, self.engine.start_id,
                                                            self.engine.pad_id)
        return self.engine.generate(input_ids, attention_mask, max_new_tokens=s.max_new_tokens, decode=s.decode,
                                    learned_stop=s.learned_stop, max_thoughts=s.max_thoughts,
                                    stop_threshold=s.stop_threshold, leave_ids=self.leave_ids,
                                    answer_ids=self.answer_ids)

    def validation_step(self, batch, batch_idx):
        labels = batch["labels"]
        real = batch["weights"].to(labels.device) > 0 if "weights" in batch else torch.ones_like(labels[:, 0]).bool()
        if not real.all():  # a question repeated to even out the ranks: no loss from it (it counts once elsewhere)
            labels = labels.masked_fill(~real[:, None], IGNORE_INDEX)
        out = self.engine(batch["input_ids"], batch["attention_mask"], labels)  # on every rank: FSDP's lockstep
        if real.any():  # the mean over batches of real questions, as the release (a batch's mean over its tokens)
            self.val_loss.update(out.loss)
        # The texts go to the callbacks' on_validation_batch_end (coconut.train.transitions counts their steps).
        return {"generated": self.score_batch(batch, self.val_metrics, keep_samples=True)}

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
        self.score_batch(batch, self.test_metrics)

    def on_test_epoch_end(self):
        self._log_metrics("test", self.test_metrics)

    def _log_metrics(self, prefix: str, metrics: EvalMetrics):
        for name in metrics.NAMES:
            metric = getattr(metrics, name)
            self.log(f"{prefix}/{name}", metric.compute(), prog_bar=name in ("acc", "tokens"))
            metric.reset()

    # -- optimisation ---------------------------------------------------------------------------

    def configure_optimizers(self):
        o = self.optim
        named = list(self.engine.named_parameters())  # the auxiliary decoder, when there is one, trains alike
        if self.step_decoder is not None:
            named += [(f"step_decoder.{n}", p) for n, p in self.step_decoder.named_parameters()]
        optimizer = build_optimizer(named, o)
        if o.schedule == "constant" and o.warmup_steps == 0:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _lr_factor(self, step: int) -> float:
        t = self.trainer
        # Lightning steps on the epoch's last accumulation group even when it is incomplete: a ceiling, by floor
        # division so that the batches' inf before the loader exists (the scheduler's first call) stays inf.
        per_epoch = max(1, -(-t.num_training_batches // max(1, t.accumulate_grad_batches)))
        return lr_factor(step, self.optim, self.schedule, per_epoch, t.max_epochs)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        """optim.grad_clip under FSDP: Lightning's FSDP precision refuses clipping by norm, so the norm is taken
        over the sharded gradients by FSDP itself (the same global norm as one device's); elsewhere Lightning's."""
        from torch.distributed.fsdp import FullyShardedDataParallel

        model = self.trainer.model
        if gradient_clip_val and isinstance(model, FullyShardedDataParallel):
            model.clip_grad_norm_(gradient_clip_val)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
