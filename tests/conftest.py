"""Shared test setup."""

import os

import torch

# Tests use tiny tensors, which gain nothing from intra-op threads; on a loaded 2-core machine OpenMP
# barriers made tiny-model tests 10-30x slower with 2 threads, and pytest-xdist runs one worker per core.
# VIDIFF_TEST_TORCH_THREADS=N runs the suite with N threads instead, to check that no test depends on
# the thread count (reductions split differently across threads round differently).
torch.set_num_threads(int(os.environ.get("VIDIFF_TEST_TORCH_THREADS", "1")))
