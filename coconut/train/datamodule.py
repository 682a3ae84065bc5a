"""The LightningDataModule: records tokenised once, the stage's samples rebuilt when the stage changes.

It owns "the stage now": the schedule's stage of the trainer's epoch while training, or the stage it
was frozen at for evaluating a checkpoint. The module and callbacks read it from here. The stage is a
pure function of the epoch, so a resumed run lands on the same stage without extra state. Everything
random in an epoch (shuffling, uniform stage mixing, iCoT smoothing) is seeded by (seed, epoch), so an
interrupted epoch replays identically. iCoT's removal follows the batch within the epoch, a pure function
of (epoch, batch index, batches per epoch): see coconut.methods.icot_schedule.
"""

from __future__ import annotations

import gc
import logging
import math
import random
from contextlib import contextmanager
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from coconut.config import DataConfig, MethodConfig, StageSchedule
from coconut.data.collate import EvalCollator, LatentCollator, WeightedEvalCollator
from coconut.data.curriculum import build_sample, icot_sample
from coconut.data.files import ensure_data
from coconut.data.length_batches import grouped_by_length
from coconut.methods.icot_schedule import EpochPlan, epoch_is_final, plan_epoch, scheduled_removal
from coconut.data.scoring import as_decoded
from coconut.data.tokenize import TEXT_FORMATS, as_tokenized_record, load_tokenized
from coconut.markers import SpecialIds
from coconut.methods import method as method_named
from coconut.train.resumable import ResumableLoader

log = logging.getLogger(__name__)


class CurriculumDataModule(L.LightningDataModule):
    def __init__(self, data: DataConfig, method: MethodConfig, schedule: StageSchedule, tokenizer, seed: int = 0,
                 max_length: int | None = None, final_stage: int = 0, stage: int | None = None):
        super().__init__()
        self.data, self.method, self.schedule, self.seed = data, method, schedule, seed
        self.tokenizer, self.max_length, self.final_stage = tokenizer, max_length, final_stage
        self.ids = SpecialIds.from_tokenizer(tokenizer)
        self.collate = LatentCollator(pad_id=tokenizer.pad_token_id, latent_id=self.ids.latent)
        self.splits: dict[str, list] = {}
        self.answers: dict[str, list[str]] = {}
        self._frozen_stage = stage
        self._files: dict[str, Path] = {}  # the split files, set by setup
        self._icot_plans: dict[tuple, EpochPlan] = {}

    @property
    def batch_dependent(self) -> bool:
        """The method's samples follow the batch within the epoch (iCoT's removal plan), not only the stage."""
        return method_named(self.method.name).batch_dependent

    def prepare_data(self) -> None:
        ensure_data(self.data)

    def setup(self, stage: str | None = None) -> None:
        """Tokenise the splits `stage` reads, once each: evaluating a checkpoint does not tokenise the training
        set (a run's saved tokenizer hashes differently from the one built in memory, so `datasets` would)."""
        self._files = ensure_data(self.data)
        if self.data.batch_by_length and self.batch_dependent and stage in (None, "fit"):
            log.warning("data.batch_by_length: %s batches keep their own order (each batch's removal follows its "
                        "place in the epoch)", self.method.name)
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": (self.test_split,)}.get(stage, tuple(self._files))
        for split in wanted:
            self._load(split)

    def _load(self, split: str) -> None:
        path = self._files[split]
        if split in self.splits or not path.exists():
            return
        rows = load_tokenized(path, self.tokenizer, TEXT_FORMATS[self.data.text_format],
                              cache_dir=Path(self.data.data_dir) / ".cache", max_length=self.max_length,
                              method=self.method, drop_too_long=self.data.drop_too_long)
        columns = ["question_ids", "step_ids", "answer_ids", "answer_start"]
        ids = rows.select_columns(columns).to_dict()  # by column: 5x faster
        records = [as_tokenized_record(dict(zip(ids, row))) for row in zip(*ids.values())]
        gold = rows["answer"]
        decoded = {a: as_decoded(self.tokenizer, a) for a in set(gold)}  # answers repeat: each decoded once
        answers = [decoded[a] for a in gold]
        if split == "train":  # the records a method leaves out of training (CODI's release: too long, negative answers)
            m = method_named(self.method.name)
            kept = [i for i, (r, a) in enumerate(zip(records, answers)) if m.trains_on(self.method, a, _tokens(r))]
            if len(kept) < len(records):
                log.info("%s: method %s trains on %d of %d records", path, m.name, len(kept), len(records))
            records, answers = [records[i] for i in kept], [answers[i] for i in kept]
        self.splits[split], self.answers[split] = records, answers

    # -- the stage ---------------------------------------------------------------------------

    @property
    def stage(self) -> int:
        """The curriculum stage now: the frozen one when evaluating, else the current epoch's."""
        if self._frozen_stage is not None:
            return self._frozen_stage
        return self.schedule.stage(self._epoch())

    def freeze_stage(self, stage: int) -> None:
        """Evaluate at `stage` from now on, whatever the epoch (a checkpoint's own stage)."""
        self._frozen_stage = stage

    @contextmanager
    def evaluating_at(self, stage: int):
        """Evaluation loaders built inside take `stage`'s inputs (the next stage's, scored before training on it);
        the stage the run is at comes back afterwards."""
        saved, self._frozen_stage = self._frozen_stage, stage
        try:
            yield self
        finally:
            self._frozen_stage = saved

    @property
    def in_final_stage(self) -> bool:
        """Whether the samples have stopped changing (checkpoints are chosen among these epochs)."""
        if self.batch_dependent and self._frozen_stage is None:
            trainer = self.trainer
            longest = max((_cot_length(r) for r in self.splits["train"]), default=0)
            return epoch_is_final(self._epoch(), self.icot_steps_per_epoch(), longest, self.method,
                                  trainer.max_epochs - 1 if trainer is not None else None)
        return self.stage >= self.final_stage

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    # -- loaders -----------------------------------------------------------------------------

    def train_dataloader(self) -> DataLoader:
        stage, epoch = self.stage, self._epoch()
        if self.batch_dependent:  # shuffled by the plan, each position's removal set by its batch
            plan, records = self.icot_plan(epoch), self.splits["train"]
            samples = [icot_sample(records[i], n, self.ids, stage) for i, n in zip(plan.order, plan.removed)]
        else:
            rng = random.Random(self.seed * 1_000_003 + epoch)
            with _collector_paused():
                samples = [build_sample(r, self.method, stage, self.ids, rng) for r in self.splits["train"]]
            # Shuffled here, not by the loader: a sampler's generator advances whenever Lightning creates an
            # iterator, which differs between a fresh and a resumed run.
            rng.shuffle(samples)
            if self.data.batch_by_length:
                samples = grouped_by_length(samples, self.data.batch_size * self._world_size(), rng)
        loader = ResumableLoader(samples, batch_size=self.data.batch_size, shuffle=False,
                                 sampler=self._rank_slice(samples), collate_fn=self.collate,
                                 num_workers=self.data.num_workers, drop_last=self.data.drop_last)
        loader.epoch, loader.batches_done = epoch, self._batches_done  # a resume mid-epoch skips what was trained
        return loader

    def _batches_done(self) -> int:
        """Batches of the current epoch the trainer has trained (saved with a checkpoint taken mid-epoch)."""
        return self.trainer.fit_loop.epoch_loop.batch_progress.current.processed if self.trainer is not None else 0

    def _rank_slice(self, samples):
        """Under DDP/FSDP each rank takes every world_size-th sample of the one shuffled order, unshuffled again.

        Lightning would otherwise inject a shuffling DistributedSampler. With ours, the ranks' micro-batches
        of one optimizer step together hold exactly the samples a single process would batch, so an
        effective batch trains the same whatever the number of devices (tested in test_ddp). A split that does
        not divide over the ranks is evened out as the release's DistributedSampler does: by repeating the
        first samples of the order, which the last step then holds besides the single process's last batch
        (data.drop_last=true drops the remainder instead)."""
        trainer = self.trainer
        if trainer is None or trainer.world_size <= 1:
            return None
        from torch.utils.data import DistributedSampler

        return DistributedSampler(samples, num_replicas=trainer.world_size, rank=trainer.global_rank,
                                  shuffle=False, drop_last=self.data.drop_last)

    def eval_items(self, split: str) -> list:
        """(sample at the current stage, answer text) for every record of a split (tokenised on first use)."""
        self._load(split)
        stage = self.stage
        if self.batch_dependent:
            removed = self.icot_eval_removal()
            return [(icot_sample(r, removed, self.ids, stage), answer)
                    for r, answer in zip(self.splits[split], self.answers[split])]
        return [(build_sample(r, self.method, stage, self.ids), answer)
                for r, answer in zip(self.splits[split], self.answers[split])]

    def eval_loader(self, split: str, limit: int | None = None) -> DataLoader:
        """Batches of a split at the current stage, the first `limit` records only when given.

        Under DDP each rank takes every world_size-th question. The ranks must make equal numbers of batches
        (FSDP's lockstep decoder calls), so the questions are evened out as Lightning's DistributedSampler
        would, by repeating the first ones; the repeats carry weight 0 (the batch's "weights"), so every
        question counts once in the metrics."""
        items = self.eval_items(split)[:limit]
        world = self._world_size()
        weighted = [(sample, answer, 1.0) for sample, answer in items]
        while items and len(weighted) % world:
            weighted += [(sample, answer, 0.0) for sample, answer in items[:world - len(weighted) % world]]
        sampler = None
        if world > 1:  # ours, so Lightning injects no padding sampler of its own
            from torch.utils.data import DistributedSampler

            sampler = DistributedSampler(weighted, num_replicas=world, rank=self.trainer.global_rank, shuffle=False)
        collate = WeightedEvalCollator(EvalCollator(self.collate))
        return DataLoader(weighted, batch_size=self.data.eval_batch_size, shuffle=False, sampler=sampler,
                          collate_fn=collate, num_workers=self.data.num_workers)

    # -- iCoT: the removal follows the batch (coconut.methods.icot_schedule) --------------------------------

    def _world_size(self) -> int:
        return self.trainer.world_size if self.trainer is not None else 1

    def icot_steps_per_epoch(self) -> int:
        """Batches each rank trains per epoch (the release spreads the epoch's removal over them): the
        loader's length, the last partial batch included unless data.drop_last, cut as Lightning cuts it by
        trainer.limit_train_batches."""
        batches = train_batches(len(self.splits["train"]), self._world_size(), self.data.batch_size,
                                self.data.drop_last)
        return limit_batches(batches, getattr(self.trainer, "limit_train_batches", None))

    def icot_removal(self, epoch: int, batch_index: int) -> float:
        """The scheduled count (before smoothing) of a batch of the epoch."""
        return scheduled_removal(epoch, batch_index, self.icot_steps_per_epoch(), self.method)

    def icot_plan(self, epoch: int) -> EpochPlan:
        """An epoch's shuffled order and removals, seeded by (seed, epoch); the last two are kept (the
        optimizer reset before an epoch's first batch looks at the previous epoch's last one)."""
        # A batch of the schedule spans the ranks: one optimizer step's samples, the same on every rank.
        key = (epoch, self.icot_steps_per_epoch(), self.data.batch_size * self._world_size())
        if key not in self._icot_plans:
            lengths = [_cot_length(r) for r in self.splits["train"]]
            rng = random.Random(self.seed * 1_000_003 + epoch)
            # The samples repeated to even out the ranks are trained in the last batch: planned there, with its
            # removal (the sampler then has nothing left to add).
            world = self._world_size()
            positions = len(lengths) if self.data.drop_last else math.ceil(len(lengths) / world) * world
            self._icot_plans[key] = plan_epoch(lengths, *key, self.method, rng, positions=positions)
            while len(self._icot_plans) > 2:
                self._icot_plans.pop(next(iter(self._icot_plans)))
        return self._icot_plans[key]

    def icot_eval_removal(self) -> float:
        """What evaluation removes: the count of the epoch's last batch without smoothing, as the release
        validates after each epoch; for a frozen stage, the count at the end of the stage's last epoch."""
        epoch = self._epoch()
        if self._frozen_stage is not None:
            epoch = self.schedule.start(self._frozen_stage) + self.schedule.length(self._frozen_stage) - 1
        steps = self.icot_steps_per_epoch()
        return scheduled_removal(epoch, steps - 1, steps, self.method)

    def val_dataloader(self) -> DataLoader:
        return self.eval_loader("val")

    @property
    def test_split(self) -> str:
        """The split a test really evaluates: "test", or "val" when there is no test file (after setup)."""
        return "test" if "test" in self._files and self._files["test"].exists() else "val"

    def test_dataloader(self) -> DataLoader:
        if self.test_split != "test":  # said, and recorded by the caller (results.json's test_split)
            log.warning("no test split (data.test_file %s does not exist): testing on val", self.data.files()["test"])
        return self.eval_loader(self.test_split)


def train_batches(examples: int, world_size: int, batch_size: int, drop_last: bool) -> int:
    """Training batches each rank's loader yields: as DistributedSampler shares the examples (padded up to a
    multiple of the ranks, or cut down with drop_last) and DataLoader batches them (the last one partial, or
    dropped with drop_last)."""
    if drop_last:
        return examples // world_size // batch_size
    per_rank = math.ceil(examples / world_size)
    return math.ceil(per_rank / batch_size)


def limit_batches(batches: int, limit: int | float | None) -> int:
    """The batches Lightning trains of `batches` under trainer.limit_train_batches, read as Lightning reads it: a
    float up to 1.0 is a fraction, an int or a number above 1 (the config's 100.0) a count of batches."""
    if limit is None:
        return batches
    if not 0 <= limit <= 1:
        limit = int(limit)
    return min(batches, limit) if isinstance(limit, int) else int(batches * limit)


@contextmanager
def _collector_paused():
    """Python's cyclic garbage collector off while an epoch's samples are built: each sample is a handful of new
    lists, none of them cyclic, and the collector would otherwise walk every live object (the tokenised records
    included) again and again as they pile up."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _cot_length(record) -> int:
    return sum(len(step) for step in record.steps)


def _tokens(record) -> int:
    return len(record.question) + sum(map(len, record.steps)) + len(record.answer)
