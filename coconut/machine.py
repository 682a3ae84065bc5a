"""What a run was computed on: the processor, the threads, the kernels torch chose, the accelerator.

Small models trained from scratch end in different places when only the order in which floats are summed
changes, and that order depends on the processor's instruction set and the thread count. A run records the
machine of each attempt (run.json), so a table built from several runs can say where its figures come from.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

# Variables that make torch, MKL or oneDNN use another instruction set than the processor's best (an AVX2-only
# processor's arithmetic on an AVX-512 one): a run under them is recorded with them.
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")


def cpu_name(cpuinfo: str | None = None) -> str:
    """The processor's model name, with its family and model numbers on x86 (one name covers several models)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(errors="replace") if path.exists() else ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown processor"
    name = re.sub(r"\s+", " ", name)
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']} model {fields['model']})"
    return name


def describe() -> dict:
    """This process's machine, as run.json records it for each attempt."""
    import torch

    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "kernels": torch.backends.cpu.get_cpu_capability(),
        "kernel_variables": {k: os.environ[k] for k in KERNEL_VARIABLES if k in os.environ},
        "accelerator": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__,
    }


def label(machine: dict | None) -> str:
    """One line for a table: `Intel(R) Xeon(R) Processor (family 6 model 207), 2 threads, AVX512 kernels`."""
    if not machine:
        return "not recorded"
    text = f"{machine.get('cpu', 'unknown processor')}, {machine.get('threads')} threads, {machine.get('kernels')} kernels"
    variables = machine.get("kernel_variables") or {}
    if variables:
        text += " (" + " ".join(f"{k}={v}" for k, v in sorted(variables.items())) + ")"
    if machine.get("accelerator"):
        text += f", {machine['accelerator']}"
    return text
