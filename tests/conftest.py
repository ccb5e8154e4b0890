"""Shared test setup."""

import torch

# Tests use tiny tensors, which gain nothing from intra-op threads; on a loaded 2-core machine OpenMP
# barriers made tiny-model tests 10-30x slower with 2 threads, and pytest-xdist runs one worker per core.
torch.set_num_threads(1)
