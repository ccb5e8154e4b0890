"""Training: a config-driven accelerate loop, EMA, atomic resumable checkpoints, logging.

* :func:`vidiff.train.loop.train` -- the loop (``vidiff train CONFIG``);
* :class:`vidiff.train.ema.EMA` -- weight averaging with a decay warmup;
* :mod:`vidiff.train.checkpoint` -- atomic, resumable checkpoints and ``latest`` discovery;
* :mod:`vidiff.train.data` -- deterministic, resumable, process-sharded sampling;
* ``vidiff train`` and ``vidiff export`` live in :mod:`vidiff.commands.train`.

Submodules are imported where they are used (accelerate is not imported by ``import vidiff.train``).
"""
