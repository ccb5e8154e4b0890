"""``vidiff eval-judges``: retrain the networks ``vidiff eval`` judges videos with."""

from __future__ import annotations

from vidiff.eval.judges import ASSETS, train_judges


def eval_judges(which: str = "all", *, out: str = str(ASSETS), seed: int = 0) -> dict:
    """Retrain the evaluation networks into OUT and print their held-out accuracies. The shipped
    weights are `vidiff eval-judges all --seed 0`.

    Args:
        which: shape (the shape judge), digit (the digit judge), video (the FD/KID feature net) or all.
        out: the folder for their .safetensors files (default: the package's assets, replacing them).
        seed: the training seed.
    """
    accuracies = train_judges(which, out=out, seed=seed)
    for name, accuracy in accuracies.items():
        print(f"{name}: held-out accuracy {accuracy}")
    return accuracies
