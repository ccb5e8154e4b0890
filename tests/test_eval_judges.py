"""The shipped judges and the video feature network: accuracy on held-out renders, that temporal and
content corruption move FD/KID, and that the training commands reproduce working weights."""

import numpy as np
import pytest
import torch

from vidiff.data.shapes import MovingShapes
from vidiff.eval import judge_training, judges
from vidiff.eval.frechet import fd, kid


def test_shape_judge_heldout_accuracy():
    judge = judges.load_shape_judge()
    # Fresh renders from a seed the training never used (training: 0 and 10000).
    x, y, labels = judge_training.render_shape_crops(400, seed=987_654)
    assert judge.labels == labels
    acc = float((judge.logits(x).argmax(1).numpy() == y).mean())
    assert acc >= 0.99, acc


def test_digit_judge_heldout_accuracy():
    from sklearn.datasets import load_digits

    d = load_digits()
    held = np.arange(len(d.images)) % 5 == 0  # MovingDigits' held-out images, never trained on
    x, y = judge_training.render_digit_crops(d.images[held], d.target[held], 300, seed=4242)
    judge = judges.load_digit_judge()
    acc = float((judge.logits(x).argmax(1).numpy() == y).mean())
    assert acc >= 0.93, acc


def test_judge_rejects_bad_crops():
    with pytest.raises(ValueError, match="16, 16"):
        judges.load_shape_judge()(np.zeros((2, 8, 8)))
    with pytest.raises(FileNotFoundError, match="vidiff eval-judges"):
        judges.load_shape_judge("/nonexistent/judge.safetensors")


def test_train_shape_judge_reproduces(tmp_path):
    out = tmp_path / "judge.safetensors"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny CNN: threads only add overhead on a busy machine
    try:
        acc = judge_training.train_crop_judge(
            "shape", out, num_train=300, steps=60, seed=1, num_val=100
        )
    finally:
        torch.set_num_threads(threads)
    assert acc > 0.9
    judge = judges.load_shape_judge(out)
    assert judge.labels == ["circle", "square", "triangle"]


@pytest.fixture(scope="module")
def shape_clips():
    ds = MovingShapes(96, split="train", seed=31)
    return torch.stack([ds[i]["video"] for i in range(96)])


def test_feature_net_moves_with_corruption(shape_clips):
    net = judges.load_feature_net()
    real_a, real_b = shape_clips[:48], shape_clips[48:]
    g = torch.Generator().manual_seed(0)
    shuffled = torch.stack([judge_training.corrupt_order(v, 1, g) for v in real_a])
    frozen = real_a[:, :, :1].expand_as(real_a)
    # Every object turned red: the colour distribution collapses. (A channel rotation would map
    # the palette onto itself and rightly leave the distribution almost unchanged.)
    recoloured = real_a.amax(dim=1, keepdim=True) * torch.tensor([1.0, 0, 0])[:, None, None, None]
    fa, fb = judges.video_features(real_a, net), judges.video_features(real_b, net)
    floor = fd(fa, fb)
    for bad in (shuffled, frozen, recoloured):
        fbad = judges.video_features(bad, net)
        assert fd(fbad, fb) > 3 * floor
        assert kid(fbad, fb, num_bootstrap=50)["kid_lo"] > kid(fa, fb, num_bootstrap=50)["kid"]
    # Order head: intact clips are recognised as intact, shuffled ones as not.
    with torch.no_grad():
        p_intact = net(real_a)["order"].argmax(1)
        p_shuf = net(shuffled)["order"].argmax(1)
    assert (p_intact == 0).float().mean() > 0.9 and (p_shuf != 0).float().mean() > 0.9


def test_feature_net_any_shape():
    net = judges.load_feature_net()
    f = judges.video_features(torch.rand(3, 1, 8, 20, 24), net)  # grey, short, non-square
    assert f.shape == (3, net.config.dim) and np.isfinite(f).all()
    with pytest.raises(ValueError, match="channels"):
        net.features(torch.rand(1, 2, 4, 8, 8))
