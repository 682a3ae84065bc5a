"""What this machine cannot run, refused before a run builds or writes anything, with the key named.

The schema (coconut.config.training) knows the names Lightning accepts; this module knows the machine: whether the
chosen accelerator is here, how many GPUs are visible, which precisions the device runs, and whether a launcher
started the other nodes of a multi-node run (without one, the first node waits for them forever).
"""

from __future__ import annotations

import importlib.util
import os

from coconut.config import ConfigError, RunConfig, TrainerConfig

# Legacy precision names, as Lightning reads them.
LEGACY_PRECISIONS = {"16": "16-mixed", "bf16": "bf16-mixed", "32": "32-true", "64": "64-true"}
FLOAT16 = ("16-mixed", "16-true", "transformer-engine-float16")
BFLOAT16 = ("bf16-mixed", "bf16-true", "transformer-engine")
TRANSFORMER_ENGINE = ("transformer-engine", "transformer-engine-float16")


def check_hardware(cfg: RunConfig) -> None:
    """A setting this machine cannot run: say so (the key, what is here, what to choose) before anything is built."""
    t = cfg.trainer
    if t.strategy == "fsdp" and not _cuda():
        raise ConfigError("trainer.strategy=fsdp needs CUDA GPUs (Lightning's FSDP runs on GPUs only); on a CPU "
                          "use trainer=ddp_cpu")
    device = resolved_accelerator(t.accelerator)
    check_devices(t, device)
    check_precision(str(t.precision), device)
    check_nodes(t.num_nodes)


def check_single_device(cfg: RunConfig) -> None:
    """What a one-device test or evaluation in the run's accelerator and precision cannot run (coconut eval, analyze:
    Lightning's tester on one device), however many devices and nodes the run trained on."""
    check_precision(str(cfg.trainer.precision), resolved_accelerator(cfg.trainer.accelerator))


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def resolved_accelerator(accelerator: str) -> str:
    """The device kind Lightning will run on (cpu, cuda, mps or tpu), as its accelerator connector picks it; a chosen
    accelerator that is not on this machine is refused."""
    from lightning.pytorch.accelerators import MPSAccelerator, XLAAccelerator

    if accelerator == "auto":  # Lightning's order (lightning.fabric.utilities.device_parser._select_auto_accelerator)
        return "tpu" if XLAAccelerator.is_available() else "mps" if MPSAccelerator.is_available() else (
            "cuda" if _cuda() else "cpu")
    if accelerator in ("gpu", "cuda"):
        if accelerator == "gpu" and MPSAccelerator.is_available():
            return "mps"
        if not _cuda():
            raise ConfigError(f"trainer.accelerator={accelerator} but no CUDA GPU is visible on this machine; run on a "
                              "GPU machine, or add trainer=cpu for a (slow) CPU run")
        return "cuda"
    if accelerator == "mps" and not MPSAccelerator.is_available():
        raise ConfigError("trainer.accelerator=mps but this machine has no Apple MPS device; use trainer.accelerator="
                          "auto, or trainer=cpu")
    if accelerator == "tpu" and not XLAAccelerator.is_available():
        raise ConfigError("trainer.accelerator=tpu but no TPU is visible here (it needs torch_xla on a TPU machine); "
                          "use trainer.accelerator=auto, or trainer=cpu")
    return accelerator


def check_devices(t: TrainerConfig, device: str) -> None:
    """On CUDA, no more devices (or higher indices) than the GPUs visible. On a CPU, devices=N is N processes."""
    if device != "cuda":
        return
    import torch

    visible = torch.cuda.device_count()
    indices = _device_indices(t.devices)
    wanted = t.device_count()
    if indices is not None and max(indices) >= visible:
        raise ConfigError(f"trainer.devices={t.devices} names GPU {max(indices)}, but {visible} CUDA GPU(s) are "
                          f"visible (indices 0 to {visible - 1}); choose among those (CUDA_VISIBLE_DEVICES hides others)")
    if indices is None and wanted is not None and wanted > visible:
        raise ConfigError(f"trainer.devices={t.devices} but {visible} CUDA GPU(s) are visible on this machine; set "
                          f"trainer.devices={visible} (or -1 for every visible GPU)")


def _device_indices(devices) -> list[int] | None:
    """The GPU indices a list or "0,1" names; None for a count, -1 or auto."""
    if isinstance(devices, (list, tuple)):
        return [int(d) for d in devices]
    if isinstance(devices, str) and "," in devices:
        return [int(d) for d in devices.split(",") if d.strip()]
    return None


def check_precision(precision: str, device: str) -> None:
    """A precision the device cannot run is refused (Lightning would run another one, or fail late)."""
    key = f"trainer.precision={precision}"
    precision = LEGACY_PRECISIONS.get(precision, precision)
    if precision in TRANSFORMER_ENGINE:
        if device != "cuda":
            raise ConfigError(f"{key} needs a CUDA GPU (NVIDIA's Transformer Engine); on {device} choose 32-true"
                              + (" or bf16-mixed" if device == "cpu" else ""))
        if importlib.util.find_spec("transformer_engine") is None:
            raise ConfigError(f"{key} needs the transformer_engine package, which is not installed; install it "
                              "(pip install transformer-engine[pytorch]) or choose bf16-mixed")
    if precision in FLOAT16 and device == "cpu":
        raise ConfigError(f"{key} needs a CUDA GPU (float16 training is a GPU setting: on a CPU Lightning would run "
                          "16-mixed as bf16-mixed); on a CPU choose 32-true or bf16-mixed")
    if precision in BFLOAT16 and device == "cuda":
        import torch

        if not torch.cuda.is_bf16_supported():
            raise ConfigError(f"{key}: this GPU ({torch.cuda.get_device_name()}) has no bfloat16; choose 16-mixed or "
                              "32-true")


def multi_node_launcher() -> str | None:
    """The launcher that started the nodes of a multi-node run, as Lightning detects its cluster environments
    (torchrun, SLURM's srun, LSF's jsrun, MPI), or Lightning's own: MASTER_ADDR and NODE_RANK set on every node.
    None: a plain command, which would wait forever for nodes that never come."""
    from lightning.fabric.plugins.environments import (LSFEnvironment, MPIEnvironment, SLURMEnvironment,
                                                       TorchElasticEnvironment)

    for name, environment in (("torchrun", TorchElasticEnvironment), ("SLURM", SLURMEnvironment),
                              ("LSF", LSFEnvironment), ("MPI", MPIEnvironment)):
        if environment.detect():
            return name
    if os.environ.get("MASTER_ADDR") and os.environ.get("NODE_RANK", "").isdigit():
        return "MASTER_ADDR and NODE_RANK"
    return None


def check_nodes(num_nodes: int) -> None:
    if num_nodes > 1 and multi_node_launcher() is None:
        raise ConfigError(
            f"trainer.num_nodes={num_nodes} but no multi-node launcher started this command (torchrun, SLURM srun, "
            "LSF jsrun, MPI, or MASTER_ADDR and NODE_RANK set on each node): it would wait forever for the other "
            "nodes; start it on every node with one of those, or set trainer.num_nodes=1")
