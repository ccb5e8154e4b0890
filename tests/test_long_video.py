"""Long video (issue 19): bouncing ground truth, the extension and keyframe drivers, cross-frame
attention, the --num-frames checks and the long-video probes, on tiny CPU models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidiff.data.balls import BouncingBalls
from vidiff.data.shapes import MovingShapes, bounce_path, render_shape

# -------------------------------------------------------------------------------------------------
# data: walls


def test_walls_default_off_keeps_items():
    """Existing data is unchanged: walls default off, and a walled set draws differently."""
    plain = MovingShapes(4, seed=5)[2]
    assert torch.equal(plain["video"], MovingShapes(4, seed=5, walls=False)[2]["video"])
    assert plain["gt"]["objects"][0]["bounce_frames"] == []
    with pytest.raises(ValueError, match="walls=True"):
        MovingShapes(4, num_frames=64)


def test_bounce_path_reflects_at_walls():
    pos, sign = bounce_path(20.0, 3.0, np.arange(12), r=4.0, size=32.0)
    # 20 -> 23 -> 26, then 29 lies past the wall at 32 - 4 = 28: reflected to 27.
    assert pos[:3].tolist() == [20.0, 23.0, 26.0]
    assert pos[3] == pytest.approx(27.0)  # 29 reflected about the wall at 28
    assert sign[2] == 1 and sign[3] == -1
    assert (pos >= 4).all() and (pos <= 28).all()
    # the step between frames is the speed except across a bounce
    steps = np.abs(np.diff(pos))
    assert np.allclose(steps[sign[:-1] == sign[1:]], 3.0)


@pytest.mark.parametrize("index", range(6))
def test_walls_ground_truth_through_bounces(index):
    ds = MovingShapes(6, num_frames=96, walls=True, seed=2)
    item = ds[index]
    o = item["gt"]["objects"][0]
    r, s = o["radius"], ds.size
    boxes = o["boxes"]
    assert item["video"].shape == (3, 96, 32, 32)
    assert (boxes[:, :2] >= -1e-4).all() and (boxes[:, 2:] <= s + 1e-4).all()  # never leaves
    assert len(o["bounce_frames"]) >= 1  # 96 frames at >= 0.6 px/frame cross 32 px
    # per-frame ground truth is exactly what is drawn: re-render a few frames, bounces included
    for t in [0, *o["bounce_frames"][:2], 95]:
        cx, cy = (boxes[t, 0] + boxes[t, 2]) / 2, (boxes[t, 1] + boxes[t, 3]) / 2
        image, mask = render_shape(o["shape"], o["rgb"], float(cx), float(cy), r, s)
        assert torch.allclose(image, item["video"][:, t], atol=1e-5)
        assert torch.equal(mask, o["masks"][t])
    # velocities: displacement equals velocity between frames without a bounce, and flips sign
    cents = o["centroids"]
    vel = o["velocities"]
    for t in range(95):
        if t + 1 not in o["bounce_frames"]:
            assert torch.allclose(cents[t + 1] - cents[t], vel[t], atol=1e-4)
    for b in o["bounce_frames"]:
        assert torch.allclose(vel[b], -vel[b - 1]) or (vel[b] * vel[b - 1] < 0).any()
    assert item["caption"].endswith(o["direction"])


def test_balls_long_clip():
    item = BouncingBalls(2, num_frames=256, seed=1)[0]
    assert item["video"].shape == (3, 256, 32, 32)
    for o in item["gt"]["objects"]:
        assert (o["boxes"][:, :2] >= -1e-4).all() and (o["boxes"][:, 2:] <= 32 + 1e-4).all()
        assert o["masks"].flatten(1).any(1).all()  # present in every frame


# -------------------------------------------------------------------------------------------------
# extension and the keyframe cascade (micro U-Nets, 4-frame clips)

from vidiff.config import load_config  # noqa: E402
from vidiff.data.shapes import vocabulary  # noqa: E402
from vidiff.data.video_io import VideoWriter, read_video, write_video  # noqa: E402
from vidiff.pipeline import VideoPipeline  # noqa: E402
from vidiff.sampling.long import (  # noqa: E402
    MAX_FRAMES,
    check_num_frames,
    extend,
    keyframe_cascade,
    window_seed,
)

MICRO_NET = "{model_channels: 8, channel_mult: [1, 2], attention_resolutions: [2], head_dim: 8"
PROMPTS = ["a red circle moving right", "a blue square moving up"]


def micro_pipeline(*overrides: str, net_extra: str = "") -> VideoPipeline:
    cfg = load_config(
        None,
        [
            f"model.net={MICRO_NET}{net_extra}}}",
            f"model.text={{vocab: {vocabulary()}, dim: 16, depth: 1, num_heads: 2}}",
            "model.frame_conditioning=true",
            "data.num_frames=6",
            "data.size=8",
            "diffusion.steps=2",
            *overrides,
        ],
    )
    torch.manual_seed(0)
    pipe = VideoPipeline(cfg.pipeline_config()).eval()
    with torch.no_grad():  # zero-initialised layers make a fresh net constant: perturb them
        for p in pipe.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return pipe


@pytest.fixture(scope="module")
def pipe():
    return micro_pipeline()


def test_extend_length_determinism_prefix_and_first_window(pipe):
    chunks = list(extend(pipe, PROMPTS, [3, 4], 17, context=2))
    video = torch.cat(chunks, dim=2)
    assert video.shape == (2, 3, 17, 8, 8)
    assert [c.shape[2] for c in chunks] == [6, 4, 4, 3]  # 6 + 4 + 4 + (4 cut to 3)
    # a video depends only on (prompt, seed, N); a shorter one is a prefix; window 0 = plain clip
    again = torch.cat(list(extend(pipe, PROMPTS[::-1], [4, 3], 17, context=2)), dim=2)
    torch.testing.assert_close(again.flip(0), video)
    short = torch.cat(list(extend(pipe, PROMPTS, [3, 4], 9, context=2)), dim=2)
    torch.testing.assert_close(short, video[:, :, :9])
    torch.testing.assert_close(video[:, :, :6], pipe.generate(PROMPTS, [3, 4]))
    below = torch.cat(list(extend(pipe, PROMPTS, [3, 4], 2)), dim=2)
    torch.testing.assert_close(below, video[:, :, :2])
    assert len({window_seed(3, w) for w in range(50)}) == 50


def test_extend_windows_know_the_previous_frames(pipe):
    """Window w is a frame-conditioned generation whose first `context` frames are the previous
    window's last ones, sampled from noise with WINDOW_NOISE_CORRELATION of it shared by the frames:
    regenerating it by hand with those known frames gives the same frames."""
    from vidiff.sampling.long import WINDOW_NOISE_CORRELATION

    video = torch.cat(list(extend(pipe, PROMPTS[:1], [5], 10, context=2)), dim=2)  # windows 0, 1
    known = torch.zeros(1, 3, 6, 8, 8)
    known[:, :, :2] = video[:, :, 4:6]
    mask = torch.tensor([[True, True, False, False, False, False]])
    kw = dict(known_frames=known, frame_mask=mask, noise_correlation=WINDOW_NOISE_CORRELATION)
    w1 = pipe.generate(PROMPTS[:1], [window_seed(5, 1)], **kw)
    torch.testing.assert_close(w1[:, :, :2], video[:, :, 4:6], atol=1e-6, rtol=0)  # kept
    torch.testing.assert_close(w1[:, :, 2:], video[:, :, 6:10])
    # the known frames matter: other context frames give other new frames
    known[:, :, :2] = 1 - known[:, :, :2]
    other = pipe.generate(PROMPTS[:1], [window_seed(5, 1)], **kw)
    assert not torch.allclose(other[:, :, 2:], video[:, :, 6:10], atol=1e-3)
    # the caller's noise_correlation wins; window 0 is the plain clip either way
    plain = torch.cat(list(extend(pipe, PROMPTS[:1], [5], 10, context=2, noise_correlation=0.0)), 2)
    torch.testing.assert_close(plain[:, :, :6], video[:, :, :6])
    assert not torch.allclose(plain[:, :, 6:], video[:, :, 6:], atol=1e-3)


def test_extend_from_a_first_frame(pipe):
    first = torch.rand(2, 3, 1, 8, 8)
    video = torch.cat(list(extend(pipe, PROMPTS, [3, 4], 10, context=2, first_frame=first)), 2)
    assert video.shape == (2, 3, 10, 8, 8)
    torch.testing.assert_close(video[:, :, :1], first, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="first_frame must be"):
        extend(pipe, PROMPTS, [3, 4], 10, first_frame=first[:1])
    with pytest.raises(ValueError, match="context must be in"):
        extend(pipe, PROMPTS, [3, 4], 10, context=6)


def test_streamed_file_equals_the_whole_video(pipe, tmp_path):
    chunks = list(extend(pipe, PROMPTS[:1], [1], 13, context=2))
    whole = torch.cat(chunks, dim=2)[0]
    for suffix in (".gif", ".mp4"):
        with VideoWriter(tmp_path / f"s{suffix}", fps=8) as out:
            for c in chunks:
                out.write(c[0])
        write_video(whole, tmp_path / f"w{suffix}", fps=8)
        streamed, _ = read_video(tmp_path / f"s{suffix}")
        assert streamed.shape[1] == 13
        torch.testing.assert_close(streamed, read_video(tmp_path / f"w{suffix}")[0])
    with pytest.raises(RuntimeError), VideoWriter(tmp_path / "broken.mp4") as out:
        out.write(whole)
        raise RuntimeError("generation failed")
    assert not (tmp_path / "broken.mp4").exists()


def test_extend_anchor_changes_later_windows_only(pipe):
    plain = torch.cat(list(extend(pipe, PROMPTS, [3, 4], 12, context=2)), dim=2)
    anchored = torch.cat(list(extend(pipe, PROMPTS, [3, 4], 12, context=2, anchor=True)), dim=2)
    torch.testing.assert_close(anchored[:, :, :6], plain[:, :, :6])  # window 0 only records
    assert not torch.allclose(anchored[:, :, 6:], plain[:, :, 6:], atol=1e-4)
    again = torch.cat(list(extend(pipe, PROMPTS, [3, 4], 12, context=2, anchor=True)), dim=2)
    torch.testing.assert_close(again, anchored)


def test_keyframe_cascade_keeps_the_keyframes(pipe):
    with pytest.raises(ValueError, match="keyframe model.*stride"):
        keyframe_cascade(pipe, pipe, PROMPTS, [1, 2], 20, stride=2)
    key = micro_pipeline(net_extra=", conditions: [stride]")
    video = torch.cat(list(keyframe_cascade(key, pipe, PROMPTS, [1, 2], 20, stride=2)), dim=2)
    assert video.shape == (2, 3, 20, 8, 8)
    keys = torch.cat(
        list(extend(key, PROMPTS, [1, 2], 10, cond={"stride": torch.full((2,), 2.0)})), 2
    )
    torch.testing.assert_close(video[:, :, ::2], keys, atol=1e-6, rtol=0)
    # the stride is an input of the keyframe model (zero-initialised, here perturbed)
    other = torch.cat(
        list(extend(key, PROMPTS, [1, 2], 6, cond={"stride": torch.full((2,), 4.0)})), 2
    )
    assert not torch.allclose(other, keys[:, :, :6], atol=1e-4)
    with pytest.raises(ValueError, match="stride must be in"):
        keyframe_cascade(key, pipe, PROMPTS, [1, 2], 20, stride=6)


@pytest.mark.parametrize("bad", [0, -3, MAX_FRAMES + 1, 2.5, True])
def test_num_frames_bad_input(bad):
    with pytest.raises(ValueError, match="--num-frames"):
        check_num_frames(bad)


# -------------------------------------------------------------------------------------------------
# cross-frame attention on the U-Net and the DiT

from vidiff.models.dit import DiTConfig, VideoDiT  # noqa: E402
from vidiff.models.unet3d import UNet3D, UNet3DConfig  # noqa: E402
from vidiff.nn.cross_frame import CrossFrameAttention, cross_frame_attention  # noqa: E402


def _frame_independent_nets():
    """A U-Net and a DiT without temporal layers: without cross-frame attention each output frame
    depends only on its own input frame."""
    unet = UNet3D(
        UNet3DConfig(
            model_channels=8,
            channel_mult=(1, 2),
            attention_resolutions=(1, 2),
            head_dim=8,
            temporal_conv=False,
            temporal_attention=False,
        )
    )
    dit = VideoDiT(
        DiTConfig(
            patch_size=(1, 2, 2),
            hidden_size=24,
            depth=2,
            head_dim=8,
            attention="windowed",
            window_size=(1, 4, 4),
        )
    )
    torch.manual_seed(1)
    with torch.no_grad():
        for net in (unet, dit):
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.1)
    return {"unet": unet.eval(), "dit": dit.eval()}


@pytest.mark.parametrize("arch", ["unet", "dit"])
def test_cross_frame_attention_identity_when_off_and_anchor_influence(arch):
    net = _frame_independent_nets()[arch]
    x, c = torch.randn(2, 3, 4, 8, 8), torch.full((2,), 500.0)
    x2 = x.clone()
    x2[:, :, 0] = torch.randn(2, 3, 8, 8)  # another anchor frame
    with torch.no_grad():
        base, base2 = net(x, c), net(x2, c)
        torch.testing.assert_close(base[:, :, 1:], base2[:, :, 1:])  # frames are independent
        with cross_frame_attention(net, "off"):
            torch.testing.assert_close(net(x, c), base, rtol=0, atol=0)
        with cross_frame_attention(net, "first"):
            out, out2 = net(x, c), net(x2, c)
    torch.testing.assert_close(out[:, :, 0], base[:, :, 0], atol=1e-5, rtol=1e-5)  # frame 0 as is
    assert not torch.allclose(out[:, :, 1:], base[:, :, 1:], atol=1e-4)
    # every frame now reads the anchor: changing frame 0 changes the others
    assert (out2[:, :, 1:] - out[:, :, 1:]).abs().amax() > 1e-3
    # restored afterwards, and trainable: gradients reach the anchor frame from later frames
    torch.testing.assert_close(net(x, c), base, rtol=0, atol=0)
    xg = x.clone().requires_grad_(True)
    with cross_frame_attention(net, CrossFrameAttention("first")):
        net(xg, c)[:, :, 2:].sum().backward()
    assert xg.grad[:, :, 0].abs().sum() > 0


def test_cross_frame_replay_needs_the_recorded_calls():
    net = _frame_independent_nets()["unet"]
    x, c = torch.randn(1, 3, 4, 8, 8), torch.full((1,), 500.0)
    proc = CrossFrameAttention("record")
    with torch.no_grad(), cross_frame_attention(net, proc):
        recorded = net(x, c)
        proc.set_mode("replay")
        replayed = net(x, c)  # attends to itself recorded: each frame sees all 4 frames
        with pytest.raises(ValueError, match="replays call 2"):
            net(x, c)
    torch.testing.assert_close(recorded, net(x, c), rtol=0, atol=0)
    assert not torch.allclose(replayed, recorded, atol=1e-4)
    with pytest.raises(ValueError, match="mode must be one of"):
        CrossFrameAttention("last")


# -------------------------------------------------------------------------------------------------
# the command: --num-frames, --long


def test_generate_num_frames_command(pipe, tmp_path, capsys):
    from vidiff import cli

    model = tmp_path / "model"
    pipe.save(model)
    out = tmp_path / "long.png"  # a filmstrip: exact 8-bit frames
    base = ["generate", "a red circle moving right", "--model", str(model), "--seed", "3"]
    assert cli.main([*base, "--num-frames", "15", "--context", "2", "-o", str(out)]) == 0
    video, _ = read_video(out)
    expected = torch.cat(list(extend(pipe, PROMPTS[:1], [3], 15, context=2)), dim=2)[0]
    assert video.shape == (3, 15, 8, 8)
    assert (video - expected).abs().max() <= 1 / 255 + 1e-6
    assert cli.main([*base, "--num-frames", "3", "-o", str(tmp_path / "short.gif")]) == 0
    assert read_video(tmp_path / "short.gif")[0].shape[1] == 3
    # bad input: one line, nothing written
    for bad in (
        ["--num-frames", "0"],
        ["--num-frames", "-4"],
        ["--num-frames", str(MAX_FRAMES + 1)],
    ):
        target = tmp_path / f"bad{bad[1]}.mp4"
        assert cli.main([*base, *bad, "-o", str(target)]) != 0
        assert not target.exists()
    err = capsys.readouterr().err
    assert "--num-frames must be at least 1, got 0" in err and "above the cap" in err
    target = tmp_path / "keys.mp4"
    assert cli.main([*base, "--num-frames", "20", "--long", "keyframes", "-o", str(target)]) != 0
    assert "needs a keyframe model" in capsys.readouterr().err and not target.exists()


# -------------------------------------------------------------------------------------------------
# long-video probes

from vidiff.eval.long_probes import drift, score_long_shapes, window_ade  # noqa: E402


@pytest.fixture(scope="module")
def long_items():
    ds = MovingShapes(3, num_frames=96, walls=True, seed=4)
    return [ds[i] for i in range(3)]


def test_long_probes_pass_on_ground_truth(long_items):
    for item in long_items:
        v = score_long_shapes(item["video"], item["caption"])
        assert v["adherence"] == 1.0 and v["presence"] == 1.0, v
        assert abs(v["size_drift"]) < 0.05 and abs(v["speed_drift"]) < 0.1, v
        assert len(v["curves"]["frame"]) == 6 and v["flicker"] == 0.0
        assert 0 < v["direction"] < 1  # it bounces: the captioned direction holds in some windows
        assert v["jumps"] == 0


def test_long_probes_fail_on_corrupted_clips(long_items):
    item = long_items[0]
    video, caption = item["video"], item["caption"]
    recoloured = video.clone()
    recoloured[:, 48:] = recoloured[:, 48:].roll(1, dims=0)  # another colour from frame 48
    v = score_long_shapes(recoloured, caption)
    assert v["adherence"] == 0.5 and v["curves"]["colour_ok"][3:] == [0.0] * 3
    gone = video.clone()
    gone[:, 64:] = 0  # the object leaves at frame 64
    v = score_long_shapes(gone, caption)
    assert v["presence"] == pytest.approx(64 / 96) and v["adherence"] < 1
    frozen = video.clone()
    frozen[:, 48:] = video[:, 48:49]  # motion stops
    assert score_long_shapes(frozen, caption)["speed_drift"] == pytest.approx(-1.0)
    assert drift(np.r_[np.full(8, 10.0), np.full(8, 5.0)]) == pytest.approx(-0.5)
    spliced = torch.cat([video[:, :48], video[:, 48 + 40 :]], dim=1)  # 40 frames cut out
    assert score_long_shapes(spliced, caption)["jumps"] == 1


def test_long_bars_pass_ground_truth_and_fail_each_corruption(long_items):
    """The per-video bars of `vidiff eval-long` (issue 19): bouncing ground truth meets them all; a
    clip that freezes, loses its object, changes colour or shrinks fails the matching bar."""
    from vidiff.eval.long_probes import long_bars

    def bars(video, caption):
        v = score_long_shapes(video, caption)
        return {**v, **long_bars(v)}

    item = long_items[0]
    video, caption = item["video"], item["caption"]
    assert bars(video, caption)["passes"] == 1.0
    frozen = video.clone()
    frozen[:, 48:] = video[:, 48:49]
    b = bars(frozen, caption)
    assert b["moving"] == 0.0 and b["passes"] == 0.0
    gone = video.clone()
    gone[:, 80:] = 0  # present in 83% of the frames
    assert bars(gone, caption)["passes"] == 0.0
    recoloured = video.clone()
    recoloured[:, 80:] = recoloured[:, 80:].roll(1, dims=0)  # 5 of 6 windows right: 83% < 90%
    b = bars(recoloured, caption)
    assert b["colour_shape"] == pytest.approx(5 / 6) and b["passes"] == 0.0


def test_window_ade_on_balls():
    item = BouncingBalls(1, num_frames=64, seed=2, min_balls=2, max_balls=2)[0]
    ref = torch.stack([o["centroids"] for o in item["gt"]["objects"]], 1).numpy()  # (T, K, 2)
    same = window_ade(ref, ref)
    assert same["ade"] == 0 and same["fde"] == 0 and same["window_ade"] == [0.0] * 4
    late = ref.copy()
    late[32:] += 3.0  # 3 px off in x and y from frame 32
    v = window_ade(late, ref)
    assert v["window_ade"][:2] == [0.0, 0.0]
    assert v["window_ade"][2] == pytest.approx(3 * 2**0.5) and v["fde"] == pytest.approx(3 * 2**0.5)


def test_eval_long_writes_curves_and_report(pipe, tmp_path):
    import json

    from vidiff import cli

    model = tmp_path / "model"
    pipe.save(model)
    out = tmp_path / "eval"
    args = ["eval-long", "--model", str(model), "--num-frames", "14", "--num-videos", "2"]
    assert cli.main([*args, "--context", "2", "--out", str(out), "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_frames"] == 14 and len(metrics["videos"]) == 2
    assert metrics["curves"]["frame"] == [0, 6]  # whole windows of the model's 6 frames
    assert len(metrics["curves"]["presence"]) == 2
    html = (out / "report.html").read_text()
    assert "long_curves.png" in html and (out / "long_curves.png").is_file()
    assert cli.main([*args[:3], "--num-frames", "0", "--out", str(tmp_path / "no")]) != 0
    assert not (tmp_path / "no").exists()
    # videos made side by side are the videos made one at a time
    one = tmp_path / "one"
    assert cli.main([*args, "--context", "2", "--out", str(one), "--batch-size", "1"]) == 0
    videos = json.loads((one / "metrics.json").read_text())["videos"]
    assert {"colour_shape", "passes"} <= set(videos[0])
    for a, b in zip(videos, metrics["videos"], strict=True):
        assert a.keys() == b.keys() and a["caption"] == b["caption"]
        for k in a.keys() - {"caption"}:
            assert a[k] == b[k] or a[k] == pytest.approx(b[k], abs=1e-5), k


def test_keyframe_clips_and_a_training_step_with_the_stride():
    """Strided walled clips are every k-th frame of the plain walled video (same objects), carry
    cond {"stride": k}, and the keyframe config's network trains on them through that cond."""
    strided = MovingShapes(4, num_frames=8, walls=True, strides=[3], seed=6)
    plain = MovingShapes(4, num_frames=22, walls=True, seed=6)
    for i in range(2):
        a, b = strided[i], plain[i]
        assert a["cond"] == {"stride": 3.0} and a["gt"]["stride"] == 3
        torch.testing.assert_close(a["video"], b["video"][:, ::3])
        torch.testing.assert_close(
            a["gt"]["objects"][0]["boxes"], b["gt"]["objects"][0]["boxes"][::3]
        )
    assert "cond" not in plain[0]
    with pytest.raises(ValueError, match="walls=True"):
        MovingShapes(4, strides=[2])
    cfg = load_config("configs/shapes-keyframes-tiny.yaml", [])
    assert cfg.data.options["strides"] == [1, 2, 3, 4] and "stride" in cfg.model.net["conditions"]
    key = micro_pipeline(net_extra=", conditions: [stride]").train()
    items = [MovingShapes(2, num_frames=6, size=8, walls=True, strides=[1, 4])[i] for i in (0, 1)]
    video = torch.stack([it["video"] for it in items])
    stride = torch.tensor([it["cond"]["stride"] for it in items])
    loss = key.training_loss(video, [it["caption"] for it in items], [0, 1], stride=stride)
    loss.mean().backward()
    assert torch.isfinite(loss).all()
    assert key.net.stride_embed.mlp[0].weight.grad.abs().sum() > 0


def test_cross_frame_replay_on_a_full_attention_dit():
    """Full-attention DiT blocks (one row per sample) take the recorded window as extra keys."""
    dit = VideoDiT(DiTConfig(patch_size=(1, 2, 2), hidden_size=24, depth=2, head_dim=8))
    torch.manual_seed(2)
    with torch.no_grad():
        for p in dit.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x, c = torch.randn(1, 3, 3, 8, 8), torch.full((1,), 300.0)
    x2 = torch.randn_like(x)  # another window
    proc = CrossFrameAttention("record")
    with torch.no_grad(), cross_frame_attention(dit, proc):
        recorded = dit(x, c)
        with cross_frame_attention(dit, "first"):  # full blocks already see frame 0: unchanged
            torch.testing.assert_close(dit(x, c), recorded, atol=1e-5, rtol=1e-5)
        proc.set_mode("replay")
        replayed = dit(x2, c)  # also attends to the recorded window x
    with torch.no_grad():
        assert not torch.allclose(replayed, dit(x2, c), atol=1e-4)
    torch.testing.assert_close(recorded, dit(x, c), rtol=0, atol=0)


def test_generate_num_frames_into_a_folder_in_batches(pipe, tmp_path):
    import json

    from vidiff import cli

    model = tmp_path / "model"
    pipe.save(model)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle moving right\na blue square moving up\n")
    out = tmp_path / "many"
    args = ["generate", "--prompts", str(prompts), "--model", str(model), "--num-frames", "9"]
    args += ["--context", "2", "--batch-size", "1", "--out-dir", str(out), "-o", "x.png"]
    assert cli.main(args) == 0
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in rows] == [0, 0]
    for r, prompt in zip(rows, PROMPTS):
        video, _ = read_video(out / r["path"])
        expected = torch.cat(list(extend(pipe, [prompt], [0], 9, context=2)), dim=2)[0]
        assert video.shape == (3, 9, 8, 8)
        assert (video - expected).abs().max() <= 1 / 255 + 1e-6  # the batch does not matter
