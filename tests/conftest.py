"""Shared test setup."""

import os

import torch

# Under pytest-xdist every worker is its own process: one intra-op thread each keeps 2 workers on
# 2 cores from oversubscribing the machine (which makes tiny-model tests several times slower).
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
