"""Motion and camera control (docs/control.md): the trajectory heat map and its polyline, the
camera dataset and path, the two conditionings on a tiny U-Net and DiT, CFG's null values, the
phase-correlation probe, and the CLI's options and errors."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.test_pipeline import micro_pipeline
from vidiff import cli
from vidiff.data.camera import (
    HELDOUT_PHOTOS,
    MOVES,
    TRAIN_PHOTOS,
    CameraMoves,
    camera_path,
    parse_camera_move,
    warp_first_frame,
)
from vidiff.data.shapes import MovingShapes
from vidiff.data.trajectory import parse_trajectory, spread_polyline, trajectory_heatmap
from vidiff.diffusion.guidance import cfg_denoiser
from vidiff.eval.motion import (
    measure_trajectory,
    phase_correlation,
    read_camera,
    scale_between,
    trajectory_errors,
    zoom_frame,
)
from vidiff.models import build_model
from vidiff.nn.conditioning import network_conditions
from vidiff.pipeline import VideoPipeline

# --------------------------------------------------------------------------------------------------
# trajectories


def test_heatmap_peaks_on_each_frames_centroid():
    centres = torch.tensor([[3.5, 4.5], [10.2, 20.7], [31.0, 0.4]])
    heat = trajectory_heatmap(centres, 32)
    assert heat.shape == (1, 3, 32, 32) and heat.max() <= 1
    for t, (x, y) in enumerate(centres.tolist()):
        iy, ix = divmod(int(heat[0, t].argmax()), 32)
        assert abs(ix + 0.5 - x) <= 0.5 and abs(iy + 0.5 - y) <= 0.5
    # two objects: the maximum of their maps
    two = trajectory_heatmap(torch.stack([centres, centres.flip(0)]), 32)
    assert torch.equal(two, torch.maximum(heat, trajectory_heatmap(centres.flip(0), 32)))


def test_polyline_is_spread_by_arc_length():
    points = parse_trajectory("0,0:10,0:10,5", 32)
    path = spread_polyline(points, 4)  # length 15 -> steps of 5
    assert path.tolist() == [[0, 0], [5, 0], [10, 0], [10, 5]]
    assert spread_polyline(parse_trajectory("4,4:4,4", 8), 3).tolist() == [[4, 4]] * 3


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("3,4", "one point"),
        ("3,4:5", "point 1 '5' is not x,y"),
        ("3,4:a,b", "point 1 'a,b' is not x,y"),
        ("3,4:nan,2", "is not x,y"),
        ("3,4:40,2", r"point 1 \(40, 2\) is outside the 32x32 frame"),
        ("-1,4:4,2", "point 0 .* outside"),
    ],
)
def test_bad_trajectories_are_named(text, match):
    with pytest.raises(ValueError, match=match):
        parse_trajectory(text, 32)


def test_shapes_trajectory_field_and_direction_dropout():
    plain = MovingShapes(num_items=40, num_frames=8)
    ctl = MovingShapes(num_items=40, num_frames=8, trajectory=True, caption_direction_dropout=0.5)
    dropped = 0
    for i in range(40):
        a, b = plain[i], ctl[i]
        assert "cond" not in a and torch.equal(a["video"], b["video"])  # the clips are unchanged
        dropped += "moving" not in b["caption"]
        assert b["caption"] in (a["caption"], a["caption"].split(" moving")[0])
        heat = b["cond"]["trajectory"]
        assert heat.shape == (1, 8, 32, 32)
        c = a["gt"]["objects"][0]["centroids"]
        iy, ix = divmod(int(heat[0, -1].argmax()), 32)
        assert abs(ix + 0.5 - c[-1, 0]) <= 0.5 and abs(iy + 0.5 - c[-1, 1]) <= 0.5
    assert 10 < dropped < 30
    # the probe's detector finds the ground-truth path
    first = plain[0]
    errs = trajectory_errors(
        measure_trajectory(first["video"]), first["gt"]["objects"][0]["centroids"]
    )
    assert errs["endpoints"] < 0.5 and errs["mean"] < 0.5


# --------------------------------------------------------------------------------------------------
# the conditionings on both architectures


def _net(arch, conditions):
    if arch == "unet3d":
        kw = {"model_channels": 8, "channel_mult": (1, 2), "head_dim": 8}
        return build_model(
            "unet3d", "unet-tiny", attention_resolutions=(2,), conditions=conditions, **kw
        )
    kw = {"hidden_size": 24, "depth": 2, "head_dim": 12, "patch_size": (1, 4, 4)}
    return build_model("dit", "dit-tiny", context_dim=None, conditions=conditions, **kw)


@pytest.mark.parametrize("arch", ["unet3d", "dit"])
@pytest.mark.parametrize("key", ["trajectory", "camera", "camera_warp"])
def test_a_tiny_net_learns_from_the_control(arch, key):
    """Zero-initialised, the control changes nothing; a few steps of training on a target that
    depends on it make the output depend on it."""
    torch.manual_seed(0)
    net = _net(arch, (key,))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 4, 8, 8, generator=g)
    c_noise = torch.full((4,), 500.0)
    if key == "trajectory":
        paths = torch.rand(4, 4, 2, generator=g) * 8
        value = torch.stack([trajectory_heatmap(p, 8) for p in paths])  # (4, 1, 4, 8, 8)
        target = value.expand(-1, 3, -1, -1, -1)
    elif key == "camera_warp":
        paths = torch.stack([camera_path(MOVES[i], 1.0, 4, 8) for i in range(4)])
        value = warp_first_frame(torch.rand(4, 3, 8, 8, generator=g), paths)  # (4, 4, 4, 8, 8)
        target = value[:, :3] * 2 - 1  # copy what the camera keeps
    else:
        value = torch.stack([camera_path(MOVES[i], 1.0, 4, 8) for i in range(4)])  # (4, 4, 3)
        target = value[:, None, :, :1, None].expand(-1, 3, -1, 8, 8).clone()
    with torch.no_grad():
        torch.testing.assert_close(net(x, c_noise, **{key: value}), net(x, c_noise))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = (net(x, c_noise, **{key: value}) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    with torch.no_grad():
        assert not torch.allclose(net(x, c_noise, **{key: value}), net(x, c_noise), atol=1e-3)
    with pytest.raises(ValueError, match=f"{key} must be"):
        bad = {"camera": value[:, :1], "camera_warp": value[:, :2]}.get(key, value[:, :, :2])
        net(x, c_noise, **{key: bad})


def test_cfg_gives_the_controls_zeros():
    specs = network_conditions(_net("unet3d", ("trajectory", "camera")).config)
    seen = []

    def inner(x, sigma, **cond):
        seen.append(cond)
        return x

    cond = {"trajectory": torch.ones(2, 1, 4, 8, 8), "camera": torch.ones(2, 4, 3)}
    cfg_denoiser(inner, 3.0, {}, conditions=specs)(
        torch.zeros(2, 3, 4, 8, 8), torch.ones(2), **cond
    )
    (both,) = seen
    for k in cond:
        assert both[k][:2].all() and not both[k][2:].any()


# --------------------------------------------------------------------------------------------------
# camera moves and the phase-correlation probe


def test_camera_moves_parse_and_path():
    assert parse_camera_move("pan-left") == ("pan-left", 1.0)
    assert parse_camera_move("Zoom-In:3") == ("zoom-in", 3.0)
    for bad, match in [("pan-sideways", "unknown camera move 'pan-sideways'"),
                       ("pan-left:fast", "speed 'fast'"), ("zoom-in:-1", "positive"),
                       ("static:2", "none for static")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            parse_camera_move(bad)
    path = camera_path("pan-up", 2.0, 3, 32)
    assert path.tolist() == [[0, 0, 0], [0, -2, 0], [0, -4, 0]]
    zoom = camera_path("zoom-out", 10.0, 3, 32)
    assert zoom[:, 2].tolist() == pytest.approx([0, -math.log(1.1), -2 * math.log(1.1)])
    assert not set(TRAIN_PHOTOS) & set(HELDOUT_PHOTOS)


def test_phase_correlation_and_scale_search():
    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.avg_pool2d(torch.rand(1, 64, 64, generator=g), 3, 1, 1)[0]
    dx, dy, peak = phase_correlation(a, torch.roll(a, (2, -3), (0, 1)))
    assert (dx, dy) == pytest.approx((-3, 2), abs=0.05) and peak > 0.5
    # b shows a's content enlarged by 1.1 about the centre
    b = zoom_frame(a, 1 / 1.1)
    assert scale_between(a, b) == pytest.approx(1.1, rel=0.02)
    assert scale_between(b, a) == pytest.approx(1 / 1.1, rel=0.02)


@pytest.fixture(scope="module")
def camera_clips():
    pytest.importorskip("skimage")
    ds = CameraMoves(num_items=400, split="heldout", num_frames=8, moves=MOVES[:6])
    return [ds[i] for i in range(12)]


def test_the_probe_reads_ground_truth_moves(camera_clips):
    right, errors = 0, []
    for item in camera_clips:
        read = read_camera(item["video"])
        right += read["move"] == item["gt"]["move"]
        errors.append(abs(read["speed"] - item["gt"]["speed"]))
        # the reversed clip reads the opposite move
        opposite = read_camera(item["video"].flip(1))["move"]
        a, b = item["gt"]["move"].split("-")
        flipped = {"left": "right", "right": "left", "up": "down", "down": "up", "in": "out",
                   "out": "in"}[b]  # fmt: skip
        assert opposite == f"{a}-{flipped}", item["gt"]
    assert right / len(camera_clips) >= 0.95
    assert sum(errors) / len(errors) < 0.25
    still = camera_clips[0]["video"][:, :1].expand(-1, 8, -1, -1)
    assert read_camera(still)["move"] == "static"


class PathPainter:
    """A stand-in model that draws the prompt's shape on the heat map's peak (or, ``lazy``, stays
    at the first frame's): the trajectory probe must pass the one and fail the other."""

    size, num_frames = 32, 8

    def __init__(self, lazy=False):
        self.lazy = lazy

    def generate(self, prompts, seeds, cond, **_):
        from vidiff.data.shapes import COLOURS, render_shape

        out = []
        for prompt, heat in zip(prompts, cond["trajectory"]):
            _, colour, shape = prompt.split()
            frames = []
            for t in range(self.num_frames):
                iy, ix = divmod(int(heat[0, 0 if self.lazy else t].argmax()), 32)
                frames.append(render_shape(shape, COLOURS[colour], ix + 0.5, iy + 0.5, 5, 32)[0])
            out.append(torch.stack(frames, 1))
        return torch.stack(out)


def test_the_trajectory_probe_tells_a_followed_path_from_a_static_one():
    from vidiff.eval.control import trajectory_probe

    good = trajectory_probe(PathPainter(), n=8)["summary"]
    assert good["endpoints_within_tol"] == 1 and good["mean_px"] < 1.5
    assert good["colour_acc"] == 1 and good["shape_acc"] >= 0.75
    lazy = trajectory_probe(PathPainter(lazy=True), n=8)["summary"]
    assert lazy["endpoints_within_tol"] < 0.5 and lazy["last_px"] > 3


def test_camera_items_are_pure_and_split():
    pytest.importorskip("skimage")
    train = CameraMoves(num_items=10, num_frames=4, size=16)
    item = train[3]
    assert torch.equal(item["video"], train[3]["video"]) and item["caption"] == "a photo"
    assert item["video"].shape == (3, 4, 16, 16) and item["cond"]["camera"].shape == (4, 3)
    assert item["gt"]["photo"] in TRAIN_PHOTOS
    assert CameraMoves(num_items=10, split="heldout")[3]["gt"]["photo"] in HELDOUT_PHOTOS


# --------------------------------------------------------------------------------------------------
# the CLI


@pytest.fixture(scope="module")
def control_models(tmp_path_factory):
    net = "{model_channels: 8, channel_mult: [1, 2], attention_resolutions: [2], head_dim: 8, "
    out = {}
    for key in ("trajectory", "camera", "camera, camera_warp", None):
        path = tmp_path_factory.mktemp(f"model-{key}".replace(", ", "-"))
        conditions = f"conditions: [{key}]" if key else "conditions: []"
        frames = [f"model.frame_conditioning={'camera_warp' in str(key)}"]
        micro_pipeline(f"model.net={net}{conditions}}}", *frames).save(path)
        out[key] = path
    return out


def _one_line(capsys, argv):
    capsys.readouterr()
    assert cli.main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidiff: error: "), lines
    return lines[0]


@pytest.mark.parametrize(
    "option, value, model, match",
    [
        ("--trajectory", "1,1:7,7", None, "--trajectory: the model .* without the trajectory"),
        ("--camera", "pan-left", "trajectory", "--camera: the model .* without the camera"),
        ("--trajectory", "1,1:9,7", "trajectory", r"--trajectory: trajectory point 1 \(9, 7\) is outside the 8x8"),
        ("--trajectory", "1,1;7,7", "trajectory", "--trajectory: trajectory .* one point"),
        ("--camera", "dolly", "camera", "--camera: unknown camera move 'dolly'"),
    ],
)  # fmt: skip
def test_control_option_errors(
    capsys, tmp_path, control_models, monkeypatch, option, value, model, match
):
    def no_load(*a, **k):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr(VideoPipeline, "load", no_load)
    out = tmp_path / "v.gif"
    argv = ["generate", "a red circle", "--model", str(control_models[model]), "-o", str(out),
            option, value]  # fmt: skip
    import re

    assert re.search(match, _one_line(capsys, argv))
    assert not out.exists()


def test_generate_with_a_trajectory_and_a_camera(tmp_path, control_models):
    out = tmp_path / "t.gif"
    argv = ["generate", "a red circle", "--model", str(control_models["trajectory"]), "-o",
            str(out), "--steps", "2", "--trajectory", "1,1:7,4:2,7"]  # fmt: skip
    assert cli.main(argv) == 0 and out.is_file()
    cam = tmp_path / "c.gif"  # the prompt is optional with --camera
    argv = ["generate", "--model", str(control_models["camera"]), "-o", str(cam), "--steps", "2",
            "--camera", "zoom-in:2"]  # fmt: skip
    assert cli.main(argv) == 0 and cam.is_file()


def test_the_probe_runners_sample_and_measure(control_models):
    from vidiff.eval.control import camera_probe, random_paths, trajectory_probe

    paths = random_paths(5, 32)
    assert all(len(p) in (2, 3) and (p >= 5).all() and (p <= 27).all() for p in paths)
    pipe = VideoPipeline.load(control_models["trajectory"])
    result = trajectory_probe(pipe, n=2, steps=2)
    assert len(result["videos"]) == 2
    s = result["summary"]
    assert 0 <= s["endpoints_within_tol"] <= 1 and 0 <= s["colour_acc"] <= 1
    pytest.importorskip("skimage")
    pipe = VideoPipeline.load(control_models["camera"])
    result = camera_probe(pipe, n=2, steps=2)
    assert [r["move"] for r in result["videos"]] == ["pan-left", "pan-right"]
    assert 0 <= result["summary"]["move_acc"] <= 1


def test_a_trajectory_without_a_model_uses_the_shipped_trajectory_model(tmp_path, monkeypatch):
    """`generate --trajectory` without --model picks vidiff/assets/shapes-trajectory; the default
    model, which has no trajectory conditioning, is never loaded for it."""
    from vidiff.commands.control import TRAJECTORY_MODEL

    assert (TRAJECTORY_MODEL / "config.json").is_file(), "make trajectory-model installs it"
    stored = json.loads((TRAJECTORY_MODEL / "config.json").read_text())
    assert stored["model"]["init"] == "default-model"  # grown from the shipped model, by name
    loaded = []
    real_load = VideoPipeline.load.__func__

    def load(cls, directory, *a, **k):
        loaded.append(Path(directory).resolve())
        return real_load(cls, directory, *a, **k)

    monkeypatch.setattr(VideoPipeline, "load", classmethod(load))
    out = tmp_path / "v.gif"
    argv = ["generate", "a red circle", "--trajectory", "3,3:20,20", "--steps", "2", "-o", str(out)]
    assert cli.main(argv) == 0 and out.is_file()
    assert loaded == [TRAJECTORY_MODEL.resolve()]


def test_controls_refuse_long_videos(capsys, tmp_path, control_models):
    argv = ["generate", "a red circle", "--model", str(control_models["trajectory"]), "-o",
            str(tmp_path / "v.gif"), "--trajectory", "1,1:7,7", "--num-frames", "64"]  # fmt: skip
    assert "drop --num-frames" in _one_line(capsys, argv)


# --------------------------------------------------------------------------------------------------
# a trained model grown by a control (configs/shapes-trajectory.yaml)

_GROWN_NETS = {
    "unet3d": "model.net={model_channels: 8, channel_mult: [1, 2], attention_resolutions: [2], "
    "head_dim: 8, layout_prior: true, spatial_coords: true, conditions: []}",
    "dit": "model.net={hidden_size: 24, depth: 2, head_dim: 12, patch_size: [1, 4, 4]}",
}


@pytest.mark.parametrize("arch", ["unet3d", "dit"])
@pytest.mark.parametrize("key", ["trajectory", "camera", "camera_warp"])
def test_a_trained_model_grown_by_a_control_equals_it_at_step_0(tmp_path, arch, key):
    """``model.init`` + ``model.net.conditions``: the stored weights load into the grown network
    (new input channels zero, new embeddings zero-initialised), so it equals the stored model until
    it is trained; the run samples with its own settings, not a distilled student's."""
    from vidiff.config import load_config
    from vidiff.train.finetune import resolve_init
    from vidiff.train.objectives import run_objective

    extra = ["model.arch=dit", "model.preset=dit-tiny"] if arch == "dit" else []
    base = micro_pipeline(*extra, _GROWN_NETS[arch], "diffusion.sampler=ddim", "diffusion.cfg=1")
    base.config.diffusion.distilled = {"method": "progressive", "steps": 3, "guidance": "baked"}
    src = base.save(tmp_path / "base")
    run = ["data.num_frames=4", "data.size=8", f"model.init={src}"]
    cfg = resolve_init(load_config(None, [*run, f"model.net={{conditions: [{key}]}}"]))
    assert cfg.model.net["conditions"] == [key] and cfg.diffusion.distilled is None
    assert (cfg.diffusion.sampler, cfg.diffusion.cfg) == ("dpmpp_2m", 3.0)  # the run's
    grown = run_objective(cfg).denoiser.net.eval()
    g = torch.Generator().manual_seed(2)
    x, c_noise = torch.randn(2, 3, 4, 8, 8, generator=g), torch.tensor([100.0, 700.0])
    context = torch.randn(2, 5, grown.config.context_dim, generator=g)
    if key == "trajectory":
        value = torch.rand(2, 1, 4, 8, 8, generator=g)
    elif key == "camera_warp":
        paths = torch.stack([camera_path(MOVES[i], 1.0, 4, 8) for i in range(2)])
        value = warp_first_frame(torch.rand(2, 3, 8, 8, generator=g), paths)
    else:
        value = torch.stack([camera_path(MOVES[i], 1.0, 4, 8) for i in range(2)])
    with torch.no_grad():
        want = base.denoiser.net(x, c_noise, context=context)
        torch.testing.assert_close(grown(x, c_noise, context=context), want, rtol=0, atol=1e-6)
        torch.testing.assert_close(
            grown(x, c_noise, context=context, **{key: value}), want, rtol=0, atol=1e-6
        )
    # the stored weights really loaded: the grown input weight holds them around the new channels
    w = grown.input_channels_view(grown.state_dict()[grown.input_weight])
    new = grown.channel_indices([key])
    assert (key == "camera") == (new == []) and (w[..., new] == 0).all()
    # a run grows a model; it does not shrink or reshape it
    with pytest.raises(ValueError, match=rf"drops \['{key}'\]"):
        grown_src = tmp_path / "grown"
        VideoPipeline(cfg.pipeline_config()).save(grown_src)
        # an export names the model it grew from: this folder by path (a shipped one by name)
        assert json.loads((grown_src / "config.json").read_text())["model"]["init"] == str(
            src.resolve()
        )
        resolve_init(load_config(None, [*run[:2], f"model.init={grown_src}",
                                        "model.net={conditions: []}"]))  # fmt: skip
    with pytest.raises(ValueError, match=r"remove model.net"):
        resolve_init(load_config(None, [*run, "model.net={conditions: [camera], depth: 1}"]))


# --------------------------------------------------------------------------------------------------
# the camera per pixel: frame 0 carried along the path


def test_the_warped_first_frame_is_the_clip_where_frame_0_saw_it():
    pytest.importorskip("skimage")
    clips = CameraMoves(num_items=24, num_frames=6, size=16, split="heldout", warp=True)
    seen_moves = set()
    for i in range(len(clips)):
        item = clips[i]
        video, warp = item["video"], item["cond"]["camera_warp"]
        assert warp.shape == (4, 6, 16, 16) and torch.equal(warp[:3, 0], video[:, 0])
        covered = warp[3] > 0.5
        # bilinear resampling of a resampled photo: close, not exact, where frame 0 saw the view
        assert float(((warp[:3] - video).abs() * covered).sum() / covered.sum() / 3) < 0.03
        move = item["gt"]["move"]
        seen_moves.add(move)
        uncovered = float(1 - covered[-1].float().mean())
        assert (uncovered == 0) == (move in ("static", "zoom-in")), move
        edge = warp_first_frame(video[:, 0], item["gt"]["camera"], padding="border")[0]
        assert torch.equal(edge[:3][covered[None].expand(3, -1, -1, -1)],
                           warp[:3][covered[None].expand(3, -1, -1, -1)])  # fmt: skip
        assert (edge[:3, -1][~covered[-1].expand(3, -1, -1)] > 0).any() or uncovered == 0
    assert {"pan-left", "zoom-out", "zoom-in"} <= seen_moves
    # a pan right by 2 px/frame: frame 1 is frame 0 shifted left by 2, the right 2 columns uncovered
    frame = torch.rand(3, 8, 8)
    warp = warp_first_frame(frame, camera_path("pan-right", 2.0, 2, 8))[0]
    assert torch.allclose(warp[:3, 1, :, :6], frame[:, :, 2:], atol=1e-6)
    assert (warp[3, 1, :, 6:] == 0).all() and (warp[3, 1, :, :6] == 1).all()
    dropped = CameraMoves(num_items=40, num_frames=2, size=8, warp=True, warp_dropout=0.5)
    zeros = sum(int(not dropped[i]["cond"]["camera_warp"].any()) for i in range(40))
    assert 8 <= zeros <= 32
    with pytest.raises(ValueError, match="warp_dropout"):
        CameraMoves(num_items=1, warp=True, warp_dropout=2)


def test_a_camera_warp_model_generates_with_and_without_a_first_frame(tmp_path, control_models):
    pytest.importorskip("skimage")
    model = control_models["camera, camera_warp"]
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.uint8)).save(photo)
    for extra in ([], ["--first-frame", str(photo)]):
        out = tmp_path / f"c{len(extra)}.png"
        argv = ["generate", "--model", str(model), "-o", str(out), "--steps", "2",
                "--camera", "pan-left:1", "--num-videos", "3", "--batch-size", "2", *extra]  # fmt: skip
        assert cli.main(argv) == 0
    pipe = VideoPipeline.load(model)
    path = camera_path("zoom-out", 5.0, pipe.num_frames, pipe.size)[None].expand(2, -1, -1)
    assert set(pipe.camera_conditions(path)) == {"camera"}  # no first frame: no pixels to carry
    cond = pipe.camera_conditions(path, torch.rand(2, 3, 8, 8))
    assert cond["camera_warp"].shape == (2, 4, pipe.num_frames, 8, 8)
    video = pipe.generate(["", ""], [0, 1], cond=cond, steps=2)
    warp = cond["camera_warp"]
    kept = (warp[:, 3:4] > 0.5).expand(-1, 3, -1, -1, -1)
    assert (~kept).any()  # zooming out uncovers a border, which the model draws
    torch.testing.assert_close(video[kept], warp[:, :3][kept], atol=1e-5, rtol=0)  # the rest: kept
    from vidiff.eval.control import camera_probe

    for first in (True, False):
        result = camera_probe(pipe, n=2, steps=2, first_frame=first)
        assert 0 <= result["summary"]["move_acc"] <= 1
        assert ("psnr_drawn_edge" in result["summary"]) == first
