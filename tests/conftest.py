"""Settings for every test. tests/ is a package tree, so pytest puts the repository root on sys.path and
the shared helpers import as `tests.helpers`, `tests.shared_data` and `tests.integration.tiny_run`."""

import os
from pathlib import Path

import pytest
import torch

# No test may reach a model hub: there is none on CI machines.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# The helpers assert too (check_against_recompute): show their values on failure like a test's own asserts.
pytest.register_assert_rewrite("tests.helpers", "tests.integration.checks")
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture
def aot_eager(monkeypatch):
    """torch.compile traced by dynamo and AOT autograd but run by eager kernels (the `aot_eager` backend, which
    takes no mode): what `latent.compile` must get through, without minutes of inductor code generation on a CPU.
    Yields the list of graphs compiled."""
    from torch._dynamo.backends.registry import lookup_backend

    real = torch.compile
    graphs = []

    def backend(gm, inputs):
        graphs.append(gm)
        return lookup_backend("aot_eager")(gm, inputs)

    def compile_(fn, mode=None, **kwargs):
        return real(fn, backend=backend, **kwargs)

    monkeypatch.setattr(torch, "compile", compile_)
    torch._dynamo.reset()
    yield graphs
    torch._dynamo.reset()


def _ignored_by_the_kernel() -> set[int]:
    """The signals the kernel ignores for this process (Linux: SigIgn in /proc/self/status), which a library's C
    code may set without Python's signal module knowing; empty elsewhere."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return set()
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), 16)
    return {signum for signum in range(1, 64) if mask >> (signum - 1) & 1}


@pytest.fixture(autouse=True)
def signal_handlers_restored():
    """Fails the test that leaves the process's SIGINT or SIGTERM handler changed, in Python or in the kernel: an
    ignored SIGINT is inherited by every subprocess a later test starts, whose Ctrl-C then does nothing."""
    import signal

    watched = (signal.SIGINT, signal.SIGTERM)
    before = {signum: signal.getsignal(signum) for signum in watched}
    ignored = _ignored_by_the_kernel() & set(watched)
    yield
    after = {signum: signal.getsignal(signum) for signum in watched}
    changed = {signal.Signals(s).name: (before[s], after[s]) for s in watched if after[s] != before[s]}
    newly_ignored = sorted(signal.Signals(s).name for s in (_ignored_by_the_kernel() & set(watched)) - ignored)
    for signum in watched:
        if before[signum] is not None:  # None: set outside Python, which cannot put it back
            signal.signal(signum, before[signum])  # the next tests start as this one did (the kernel's record too)
    assert not changed, f"the test left signal handlers changed (before, after): {changed}"
    assert not newly_ignored, f"the test left {newly_ignored} ignored by the kernel, unknown to Python's signal module"
