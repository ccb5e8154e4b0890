"""``vidiff eval-judges``: retrain the networks ``vidiff eval`` judges videos with."""

from __future__ import annotations


def eval_judges(which: str = "all", *, out: str | None = None, seed: int = 0) -> dict:
    """Retrain the evaluation networks into OUT and print their held-out accuracies. The shipped
    weights are `vidiff eval-judges all --seed 0`.

    Args:
        which: shape (the shape judge), digit (the digit judge), video (the FD/KID feature net) or all.
        out: the folder for their .safetensors files (default: the package's assets, replacing them).
        seed: the training seed.
    """
    from vidiff.eval.judge_training import ASSETS, train_judges

    accuracies = train_judges(which, out=str(ASSETS) if out is None else out, seed=seed)
    for name, accuracy in accuracies.items():
        print(f"{name}: held-out accuracy {accuracy}")
    return accuracies
