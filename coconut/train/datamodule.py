"""The LightningDataModule: records tokenised once, the stage's samples rebuilt when the stage changes.

The stage is a pure function of the epoch (`StageSchedule.stage`), so a resumed run lands on the same
stage without extra state. Everything random in an epoch (shuffling, uniform stage mixing, iCoT
smoothing) is seeded by (seed, epoch), so an interrupted epoch replays identically.
"""

from __future__ import annotations

import random
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from coconut.config import RunConfig, stage_schedule
from coconut.data.curriculum import SpecialIds, build_sample
from coconut.data.collate import LatentCollator
from coconut.data.records import DataError, write_records
from coconut.data.tokenize import PRETRAINED_FORMAT, WORD_FORMAT, TextFormat, as_tokenized_record, load_tokenized


def data_files(cfg: RunConfig) -> dict[str, Path]:
    d = Path(cfg.data.data_dir)
    return {
        "train": Path(cfg.data.train_file) if cfg.data.train_file else d / "train.json",
        "val": Path(cfg.data.val_file) if cfg.data.val_file else d / "val.json",
        "test": Path(cfg.data.test_file) if cfg.data.test_file else d / "test.json",
    }


def ensure_data(cfg: RunConfig) -> dict[str, Path]:
    """Generate missing split files when a generator is set; else insist they exist."""
    files = data_files(cfg)
    sizes = {"train": cfg.data.train_size, "val": cfg.data.val_size, "test": cfg.data.test_size}
    for offset, (split, path) in enumerate(files.items()):
        if path.exists():
            continue
        if cfg.data.generator is None:
            if split == "test":
                continue
            raise DataError(path, None, None, f"no such file (data.{split}_file), and data.generator is null")
        from coconut.cli.data import generate

        # Different seeds per split keep the splits apart.
        write_records(generate(cfg.data.generator, sizes[split], cfg.data.seed * 1000 + offset, progress=True), path)
    return files


def text_format(cfg: RunConfig) -> TextFormat:
    return WORD_FORMAT if cfg.data.text_format == "word" else PRETRAINED_FORMAT


def answer_marker(cfg: RunConfig) -> str:
    return text_format(cfg).answer_prefix


class EvalCollator:
    """Validation/test batches: the training form (for the loss) and the prompts (for generation)."""

    def __init__(self, collate: LatentCollator):
        self.collate = collate

    def __call__(self, items):
        samples = [s for s, _ in items]
        batch = self.collate(samples)
        prompts = self.collate.prompts(samples)
        batch.update({f"prompt_{k}": v for k, v in prompts.items() if k != "num_thoughts"})
        batch["answers"] = [answer for _, answer in items]
        return batch


class CurriculumDataModule(L.LightningDataModule):
    def __init__(self, cfg: RunConfig, tokenizer, max_length: int | None = None):
        super().__init__()
        self.cfg, self.tokenizer, self.max_length = cfg, tokenizer, max_length
        self.ids = SpecialIds.from_tokenizer(tokenizer)
        self.collate = LatentCollator(pad_id=tokenizer.pad_token_id, latent_id=self.ids.latent)
        self.splits: dict[str, list] = {}
        self.answers: dict[str, list[str]] = {}
        self.eval_stage: int | None = None  # set by `coconut eval`; else the epoch's stage

    def prepare_data(self) -> None:
        ensure_data(self.cfg)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        files = ensure_data(self.cfg)
        cache = Path(self.cfg.data.data_dir) / ".cache"
        for split, path in files.items():
            if not path.exists():
                continue
            rows = load_tokenized(path, self.tokenizer, text_format(self.cfg), cache_dir=cache,
                                  max_length=self.max_length, method=self.cfg.method,
                                  drop_too_long=self.cfg.data.drop_too_long)
            self.splits[split] = [as_tokenized_record(r) for r in rows]
            self.answers[split] = list(rows["answer"])

    # -- the stage ---------------------------------------------------------------------------

    def current_stage(self) -> int:
        if self.eval_stage is not None:
            return self.eval_stage
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        return stage_schedule(self.cfg).stage(epoch)

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    # -- loaders -----------------------------------------------------------------------------

    def train_dataloader(self) -> DataLoader:
        stage, epoch = self.current_stage(), self._epoch()
        rng = random.Random(self.cfg.seed * 1_000_003 + epoch)
        samples = [build_sample(r, self.cfg.method, stage, self.ids, rng) for r in self.splits["train"]]
        # Shuffled here, not by the loader: a sampler's generator advances whenever Lightning creates an
        # iterator, which differs between a fresh and a resumed run.
        rng.shuffle(samples)
        return DataLoader(samples, batch_size=self.cfg.data.batch_size, shuffle=False, sampler=self._rank_slice(samples),
                          collate_fn=self.collate, num_workers=self.cfg.data.num_workers, drop_last=True)

    def _rank_slice(self, samples):
        """Under DDP/FSDP each rank takes every world_size-th sample of the one shuffled order, unshuffled again.

        Lightning would otherwise inject a shuffling DistributedSampler. With ours, the ranks' micro-batches
        of one optimizer step together hold exactly the samples a single process would batch, so an
        effective batch trains the same whatever the number of devices (tested in test_ddp)."""
        trainer = self.trainer
        if trainer is None or trainer.world_size <= 1:
            return None
        from torch.utils.data import DistributedSampler

        return DistributedSampler(samples, num_replicas=trainer.world_size, rank=trainer.global_rank,
                                  shuffle=False, drop_last=True)

    def _eval_loader(self, split: str) -> DataLoader:
        stage = self.current_stage()
        items = [(build_sample(r, self.cfg.method, stage, self.ids), answer)
                 for r, answer in zip(self.splits[split], self.answers[split])]
        return DataLoader(items, batch_size=self.cfg.data.eval_batch_size, shuffle=False,
                          collate_fn=EvalCollator(self.collate), num_workers=self.cfg.data.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test" if "test" in self.splits else "val")
