"""Training: a config-driven accelerate loop, EMA, atomic resumable checkpoints, logging, commands.

* :func:`vidiff.train.loop.train` -- the loop (``vidiff train CONFIG``);
* :class:`vidiff.train.ema.EMA` -- weight averaging with a decay warmup;
* :mod:`vidiff.train.checkpoint` -- atomic, resumable checkpoints and ``latest`` discovery;
* :mod:`vidiff.train.data` -- deterministic, resumable, process-sharded sampling;
* :mod:`vidiff.train.commands` -- ``vidiff train`` and ``vidiff export``.

Submodules are imported where they are used (accelerate is not imported by ``import vidiff.train``).
"""
