"""Training: a config-driven accelerate loop, EMA, atomic resumable checkpoints, logging.

* :func:`vidiff.train.loop.train` -- the loop (``vidiff train CONFIG``), never naming an architecture;
* :mod:`vidiff.train.objectives` -- what it trains: the objective protocol, ``build_objective``, the
  VAE's objective with its patch-GAN;
* :mod:`vidiff.train.settings` -- validation, LR schedule, optimiser, resume compatibility;
* :class:`vidiff.train.ema.EMA` -- weight averaging with a decay warmup;
* :mod:`vidiff.train.checkpoint` -- atomic, resumable checkpoints; the newest readable one;
* :mod:`vidiff.train.data` -- deterministic, resumable, process-sharded sampling;
* ``vidiff train`` and ``vidiff export`` live in :mod:`vidiff.commands.train`.

Submodules are imported where they are used (accelerate is not imported by ``import vidiff.train``).
"""
