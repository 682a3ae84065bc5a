"""What a machine cannot run is refused before a run starts (coconut.train.hardware), with the key named; the
schema's names stay those Lightning accepts. GPUs, MPS and launchers are simulated (monkeypatch), so every branch
runs on a CPU machine."""

import pytest
import torch

from coconut.config import SEED_RANGE, ConfigError
from coconut.config.training import ACCELERATORS, STRATEGIES
from coconut.experiment import load_config
from coconut.train import hardware
from coconut.train.hardware import check_hardware, check_nodes, check_single_device, multi_node_launcher

# Every variable by which Lightning's cluster environments (or its own multi-node launch) recognise a launcher.
LAUNCHER_VARIABLES = ("RANK", "GROUP_RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "WORLD_SIZE", "TORCHELASTIC_RUN_ID",
                      "SLURM_NTASKS", "SLURM_JOB_NAME", "SLURM_PROCID", "LSB_JOBID", "LSB_DJOB_RANKFILE",
                      "JSM_NAMESPACE_LOCAL_RANK", "JSM_NAMESPACE_SIZE", "MASTER_ADDR", "MASTER_PORT", "NODE_RANK")


def test_the_schemas_names_are_lightnings():
    """A name the schema accepts is one Lightning knows (else a run would fail late, inside Lightning)."""
    from lightning.fabric.utilities.seed import max_seed_value, min_seed_value
    from lightning.pytorch.accelerators import AcceleratorRegistry
    from lightning.pytorch.strategies import StrategyRegistry

    assert set(ACCELERATORS) - {"auto", "gpu"} <= set(AcceleratorRegistry.available_accelerators())
    assert set(STRATEGIES) - {"auto"} <= set(StrategyRegistry.available_strategies())
    assert SEED_RANGE == (min_seed_value, max_seed_value)


def test_the_presets_pass_the_schema():
    for preset in ("cpu", "ddp_cpu", "gpu", "ddp", "fsdp"):
        load_config("demo_coconut", [f"trainer={preset}", "latent.auto_thought_scale=false"])


@pytest.fixture
def no_launcher(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def gpus(monkeypatch):
    """A CUDA machine with `n` GPUs (bf16 or not), no MPS, no TPU."""
    from lightning.pytorch.accelerators import MPSAccelerator, XLAAccelerator

    def have(n: int, bf16: bool = True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Old GPU")
        monkeypatch.setattr(MPSAccelerator, "is_available", staticmethod(lambda: False))
        monkeypatch.setattr(XLAAccelerator, "is_available", staticmethod(lambda: False))
    return have


def config(*overrides):
    return load_config("demo_coconut", list(overrides))


def refused(cfg, match):
    with pytest.raises(ConfigError, match=match):
        check_hardware(cfg)


def test_more_devices_than_visible_gpus_is_refused_naming_the_count(gpus, no_launcher):
    gpus(2)
    refused(config("trainer=gpu", "trainer.devices=4"), r"trainer.devices=4 but 2 CUDA GPU\(s\) are visible.*"
                                                      r"trainer.devices=2")
    refused(config("trainer=gpu", "trainer.devices=[0,3]"), r"names GPU 3, but 2 CUDA GPU\(s\) are visible")
    refused(config("trainer.accelerator=auto", "trainer.devices=3"), "trainer.devices=3")  # auto picks CUDA
    for fits in ("2", "-1", "auto", "[0,1]", "1"):
        check_hardware(config("trainer=gpu", f"trainer.devices={fits}"))


def test_devices_on_a_cpu_are_processes_and_stay_allowed(gpus, no_launcher):
    gpus(0)
    check_hardware(config("trainer=ddp_cpu", "trainer.devices=8"))
    check_hardware(config("trainer.accelerator=auto", "trainer.devices=8"))
    refused(config("trainer=gpu"), "trainer.accelerator=gpu but no CUDA GPU is visible")


def test_precision_the_device_cannot_run_is_refused(gpus, no_launcher, monkeypatch):
    gpus(0)
    for precision in ("16-mixed", "16", "16-true"):
        refused(config("trainer=cpu", f"trainer.precision={precision}"), f"trainer.precision={precision} needs a CUDA GPU")
    for fine in ("32-true", "bf16-mixed", "bf16-true", "64-true"):
        check_hardware(config("trainer=cpu", f"trainer.precision={fine}"))
    gpus(1, bf16=False)
    refused(config("trainer=gpu", "trainer.precision=bf16-mixed"), "trainer.precision=bf16-mixed: this GPU .* has no "
                                                                  "bfloat16; choose 16-mixed or 32-true")
    check_hardware(config("trainer=gpu", "trainer.precision=16-mixed"))
    gpus(1, bf16=True)
    check_hardware(config("trainer=gpu", "trainer.precision=bf16-mixed"))
    monkeypatch.setattr(hardware.importlib.util, "find_spec", lambda name: None)
    refused(config("trainer=gpu", "trainer.precision=transformer-engine"), "needs the transformer_engine package")


def test_an_accelerator_not_on_this_machine_is_refused(gpus, no_launcher):
    gpus(0)
    refused(config("trainer.accelerator=tpu"), "trainer.accelerator=tpu but no TPU is visible")
    refused(config("trainer.accelerator=mps"), "trainer.accelerator=mps but this machine has no Apple MPS")
    refused(config("trainer.accelerator=cuda"), "trainer.accelerator=cuda but no CUDA GPU")


def test_several_nodes_need_a_launcher(no_launcher):
    assert multi_node_launcher() is None
    with pytest.raises(ConfigError, match="trainer.num_nodes=2 but no multi-node launcher.*trainer.num_nodes=1"):
        check_nodes(2)
    check_nodes(1)  # one node needs none
    no_launcher.setenv("MASTER_ADDR", "10.0.0.1")  # Lightning's own multi-node launch: the same command on every node
    assert multi_node_launcher() is None, "MASTER_ADDR alone does not say which node this is"
    no_launcher.setenv("NODE_RANK", "1")
    assert multi_node_launcher() == "MASTER_ADDR and NODE_RANK"
    check_nodes(2)


def test_torchrun_counts_as_a_launcher(no_launcher):
    for name, value in (("RANK", "0"), ("GROUP_RANK", "0"), ("LOCAL_RANK", "0"), ("LOCAL_WORLD_SIZE", "1"),
                        ("WORLD_SIZE", "2"), ("TORCHELASTIC_RUN_ID", "x"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "1")):
        no_launcher.setenv(name, value)
    assert multi_node_launcher() == "torchrun"
    check_nodes(2)


def test_one_device_checks_the_accelerator_and_precision_only(gpus, no_launcher):
    """An evaluation runs on one device: a run trained on more devices or nodes than are here still evaluates."""
    gpus(1)
    check_single_device(config("trainer=gpu", "trainer.devices=8", "trainer.num_nodes=4"))
    gpus(0)
    with pytest.raises(ConfigError, match="trainer.precision=16-mixed needs a CUDA GPU"):
        check_single_device(config("trainer=cpu", "trainer.precision=16-mixed"))
    with pytest.raises(ConfigError, match="trainer.accelerator=gpu but no CUDA GPU"):
        check_single_device(config("trainer=gpu"))
