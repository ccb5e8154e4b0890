"""Exact, offline evaluation of generated video: probes, judges, Fréchet/KID, report, evaluation runs.

Import submodules directly (``vidiff.eval.probes``, ``vidiff.eval.frechet``, ...); this package
imports nothing heavy on its own.
"""
