"""Settings for every test. tests/ is a package tree, so pytest puts the repository root on sys.path and
the shared helpers import as `tests.helpers`, `tests.shared_data` and `tests.integration.tiny_run`."""

import os

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
