"""Shared test setup: one torch thread, and every test starting from the same global RNG state."""

import os
import random

import numpy as np
import pytest
import torch

# Tests use tiny tensors, which gain nothing from intra-op threads; on a loaded 2-core machine OpenMP
# barriers made tiny-model tests 10-30x slower with 2 threads, and pytest-xdist runs one worker per core.
# VIDIFF_TEST_TORCH_THREADS=N runs the suite with N threads instead, to check that no test depends on
# the thread count (reductions split differently across threads round differently).
torch.set_num_threads(int(os.environ.get("VIDIFF_TEST_TORCH_THREADS", "1")))

# Global RNG state at the start of every test: without this, a test that draws from the global
# generators (torch.rand, a model's initialisation) sees whatever the tests before it in the same
# process left behind, so its result depends on test order and on how xdist splits the suite.
# VIDIFF_TEST_SEED=N runs the suite from another state, to find tests that pass only by luck.
TEST_SEED = int(os.environ.get("VIDIFF_TEST_SEED", "0"))


@pytest.fixture(autouse=True)
def _seed_global_rngs():
    torch.manual_seed(TEST_SEED)
    np.random.seed(TEST_SEED)
    random.seed(TEST_SEED)
