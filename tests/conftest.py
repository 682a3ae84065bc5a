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
