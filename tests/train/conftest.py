"""A tiny system (module, data module, tokenizer) built from the demo config on generated data, and a
stand-in for the Lightning Trainer, so the train layer's pieces are tested without a full run."""

from types import SimpleNamespace

import pytest

from coconut.experiment import load_config
from tests.integration.tiny_run import tiny_overrides


@pytest.fixture(scope="package")
def tiny_root(tmp_path_factory):
    """One folder of generated tiny data (64 train, 24 val, 24 test records) for every test here."""
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture
def tiny_system(tiny_root):
    """build(*overrides) -> (cfg, module, datamodule, tokenizer), a fresh system each call, data set up."""
    from coconut.train.build import build_system

    def build(*extra):
        cfg = load_config("demo_coconut", tiny_overrides(tiny_root, *extra))
        module, datamodule, tokenizer = build_system(cfg)
        datamodule.setup("fit")
        return cfg, module, datamodule, tokenizer

    return build


def make_trainer(datamodule=None, epoch=0, **fields):
    trainer = SimpleNamespace(current_epoch=epoch, global_step=0, world_size=1, global_rank=0, max_epochs=4,
                              datamodule=datamodule, loggers=[], optimizers=[], sanity_checking=False)
    trainer.__dict__.update(fields)
    if datamodule is not None:
        datamodule.trainer = trainer
    return trainer


@pytest.fixture
def fake_trainer():
    """fake_trainer(datamodule, epoch, **fields): what the data module, module and callbacks read of a Trainer
    (current_epoch, global_step, world_size, datamodule, loggers, optimizers, ...); set as the data module's."""
    return make_trainer
