"""Editing: masked regeneration (RePaint), video to video (SDEdit), their inputs and `vidiff edit`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.test_pipeline import PROMPTS, micro_pipeline
from vidiff import cli
from vidiff.data.edit_inputs import box_mask, fit_clip, fit_mask, read_mask
from vidiff.data.video_io import read_video, write_video
from vidiff.diffusion.editing import (
    clean_plate,
    composite_layer,
    layer_input,
    masked_denoiser,
    sdedit_start,
    strength_steps,
    structure_denoiser,
)
from vidiff.sampling import sample
from vidiff.sampling.resample import sample_resampled


@pytest.fixture(scope="module")
def pipe():
    return micro_pipeline()


def _inputs(batch=2):
    g = torch.Generator().manual_seed(0)
    video = torch.rand(batch, 3, 4, 8, 8, generator=g)
    mask = torch.zeros(batch, 4, 8, 8, dtype=torch.bool)
    mask[:, :, 2:6, 1:5] = True
    return video, mask


def test_mask_keeps_every_pixel_outside_and_changes_inside(pipe):
    video, mask = _inputs()
    for resample, strength in [(0, None), (2, None), (1, 0.6)]:
        out = pipe.edit(video, PROMPTS[:2], [0, 1], mask=mask, resample=resample, strength=strength)
        outside = ~mask[:, None].expand_as(video)
        assert torch.equal(out[outside], video[outside])  # bit for bit
        assert (out[~outside] - video[~outside]).abs().mean() > 0.05


def test_strength_one_without_mask_is_generation(pipe):
    video, _ = _inputs()
    edited = pipe.edit(video, PROMPTS[:2], [3, 4], strength=1.0)
    torch.testing.assert_close(edited, pipe.generate(PROMPTS[:2], [3, 4]), atol=0, rtol=0)


def test_strength_counts_steps_and_low_strength_stays_near_the_input(pipe):
    assert [strength_steps(s, 8) for s in (0.1, 0.3, 0.5, 0.51, 1.0)] == [1, 3, 4, 5, 8]
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="strength"):
            strength_steps(bad, 8)
        with pytest.raises(ValueError, match="strength"):
            pipe.edit(_inputs()[0], PROMPTS[:2], [0, 1], strength=bad)
    video, _ = _inputs()
    sigmas = pipe.sigmas(8)
    x, tail = sdedit_start(video, torch.ones_like(video), sigmas, 0.25)
    assert len(tail) == 3 and tail[-1] == 0  # two steps and the final 0
    torch.testing.assert_close(x, video + tail[0])
    dist = [
        (pipe.edit(video, PROMPTS[:2], [0, 1], strength=s, steps=8) - video).abs().mean()
        for s in (0.125, 0.5, 1.0)
    ]
    assert dist[0] < dist[1] < dist[2]


def test_a_mask_of_whole_frames_uses_the_frame_mask_channels(pipe):
    video, _ = _inputs()
    mask = torch.zeros(2, 4, 8, 8, dtype=torch.bool)
    mask[:, 2:] = True  # continuation: frames 0-1 known
    edited = pipe.edit(video, PROMPTS[:2], [0, 1], mask=mask)
    known = torch.tensor([[True, True, False, False]] * 2)
    generated = pipe.generate(PROMPTS[:2], [0, 1], known_frames=video, frame_mask=known)
    torch.testing.assert_close(edited, generated, atol=1e-5, rtol=0)
    assert torch.equal(edited[:, :, :2], video[:, :, :2])
    repaint = pipe.edit(video, PROMPTS[:2], [0, 1], mask=mask, frame_channels=False)
    assert torch.equal(repaint[:, :, :2], video[:, :, :2])
    assert not torch.allclose(repaint, edited, atol=1e-3)


def test_edit_depends_on_input_prompt_and_seed_not_on_the_batch(pipe):
    video, mask = _inputs(3)
    kw = dict(mask=mask, strength=0.7, resample=1)
    together = pipe.edit(video, PROMPTS, [5, 6, 7], **kw)
    alone = torch.cat(
        [
            pipe.edit(
                video[i : i + 1],
                PROMPTS[i : i + 1],
                [5 + i],
                mask=mask[i : i + 1],
                strength=0.7,
                resample=1,
            )  # fmt: skip
            for i in range(3)
        ]
    )
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(pipe.edit(video, PROMPTS, [5, 6, 7], **kw), together)
    assert not torch.allclose(pipe.edit(video, PROMPTS, [8, 9, 10], **kw), together)


def test_edit_rejects_bad_shapes(pipe):
    video, mask = _inputs()
    with pytest.raises(ValueError, match="videos must be"):
        pipe.edit(video[:, :, :3], PROMPTS[:2], [0, 1], strength=0.5)
    with pytest.raises(ValueError, match="mask must be"):
        pipe.edit(video, PROMPTS[:2], [0, 1], mask=mask[:, :, :4])
    with pytest.raises(ValueError, match="and/or a strength"):
        pipe.edit(video, PROMPTS[:2], [0, 1])


def _over_texture(batch=2):
    """Saturated squares moving right over a static random texture: (clips, texture, object masks)."""
    g = torch.Generator().manual_seed(1)
    plate = torch.rand(batch, 3, 1, 8, 8, generator=g) * 0.5 + 0.25  # never within 0.25 of black
    cov = torch.zeros(batch, 1, 4, 8, 8)
    for t in range(4):
        cov[:, :, t, 2:5, t : t + 3] = 1.0
    colour = torch.tensor([1.0, 0.0, 1.0]).view(1, 3, 1, 1, 1)
    return plate * (1 - cov) + cov * colour, plate, cov[:, 0] > 0


def test_clean_plate_recovers_the_background_behind_a_moving_object():
    video, plate, obj = _over_texture()
    # Each pixel the object crosses is uncovered in some frame: the plate is exact.
    torch.testing.assert_close(clean_plate(video, obj), plate, atol=0, rtol=0)
    # A pixel masked in every frame takes its nearest unmasked neighbour's value.
    mask = obj.clone()
    mask[:, :, 3, 3] = True
    got = clean_plate(video, mask)[:, :, 0, 3, 3]
    neighbours = [plate[:, :, 0, y, x] for y, x in [(2, 3), (4, 3), (3, 2), (3, 4)]]
    assert any(torch.equal(got, n) for n in neighbours)
    with pytest.raises(ValueError, match="pixels outside the mask"):
        clean_plate(video, torch.ones_like(obj))


def test_layer_input_and_composite_invert_each_other_on_a_saturated_object():
    video, plate, obj = _over_texture()
    black = torch.zeros(3)
    layer = layer_input(video, plate, black)
    # The foreground on black: the object alone, the texture gone.
    torch.testing.assert_close(layer, video * obj[:, None], atol=0, rtol=0)
    torch.testing.assert_close(composite_layer(layer, plate, black), video, atol=1e-6, rtol=0)
    # A half-covered pixel of a new colour over the plate: (1 - a) plate + a colour.
    half = torch.zeros_like(layer)
    half[:, 1] = 0.5  # green at coverage 0.5 on black
    want = 0.5 * plate.expand_as(half) + half
    torch.testing.assert_close(composite_layer(half, plate, black), want, atol=1e-6, rtol=0)


def test_layered_edit_keeps_the_outside_and_regenerates_over_the_plate(pipe):
    video, _, obj = _over_texture()
    mask = torch.zeros_like(obj)
    mask[:, :, 1:6, :] = True
    out = pipe.edit(video, PROMPTS[:2], [0, 1], mask=mask, layered=True)
    outside = ~mask[:, None].expand_as(video)
    assert torch.equal(out[outside], video[outside])  # bit for bit
    # Inside: the model's edit of the foreground on black, laid over the clean plate (rows 1-5 are
    # masked in every frame, so there it is filled from rows 0 and 6).
    behind = clean_plate(video, mask)
    canvas = layer_input(video, behind, torch.zeros(3))
    layer = pipe.edit(canvas, PROMPTS[:2], [0, 1], mask=mask)
    want = torch.where(mask[:, None], composite_layer(layer, behind, torch.zeros(3)), video)
    torch.testing.assert_close(out, want, atol=1e-6, rtol=0)
    assert not torch.allclose(out, pipe.edit(video, PROMPTS[:2], [0, 1], mask=mask), atol=1e-3)
    with pytest.raises(ValueError, match="layered needs one"):
        pipe.edit(video, PROMPTS[:2], [0, 1], strength=0.5, layered=True)


def test_masked_denoiser_follows_the_inputs_noisy_trajectory():
    """With an exact denoiser of a point mass at ``target`` the unknown region ends on ``target`` and
    the known one on the input, and the inner denoiser always sees ``known + sigma eps`` there."""
    known, target = torch.zeros(1, 1, 2, 4, 4), torch.ones(1, 1, 2, 4, 4)
    eps = torch.randn(1, 1, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 1, 2, 4, 4, dtype=torch.bool)
    mask[..., :2] = True
    seen = []

    def point_mass(x, sigma):
        seen.append((x - (known + sigma.view(-1, 1, 1, 1, 1) * eps))[~mask].abs().max())
        return target.expand_as(x)

    d = masked_denoiser(point_mass, known, mask, eps)
    sigmas = torch.tensor([10.0, 3.0, 1.0, 0.0])
    out = sample_resampled(d, eps * 10, sigmas, "ddim", resample=2)
    assert torch.equal(out, torch.where(mask, target, known))
    assert max(seen) < 1e-5 and len(seen) == 1 + 3 + 3  # the final step is never resampled
    plain = sample(d, eps * 10, sigmas, sampler="ddim")
    torch.testing.assert_close(sample_resampled(d, eps * 10, sigmas, "ddim", resample=0), plain)
    with pytest.raises(ValueError, match="broadcast"):
        masked_denoiser(point_mass, known, mask[..., :3], eps)


def test_latent_model_mask_maps_to_latent_cells_and_keeps_outside_pixels(tmp_path):
    from tests.test_latent_pipeline import _latent_pipeline
    from tests.test_vae import micro_vae

    micro_vae(seed=1).save(tmp_path / "vae")
    lp = _latent_pipeline(tmp_path / "vae")
    mask = torch.zeros(1, 16, 16, 16, dtype=torch.bool)
    mask[0, 5, 4:6, 9:10] = (
        True  # frame 5 is in latent frame 2 (frames 5..8); pixels in cell (1, 2)
    )
    lm = lp._mask_in_model_space(mask)
    assert lm.shape == (1, 1, 5, 4, 4) and lm.sum() == 1 and lm[0, 0, 2, 1, 2]
    video = torch.rand(1, 3, 16, 16, 16)
    out = lp.edit(video, PROMPTS[:1], [0], mask=mask)
    outside = ~mask[:, None].expand_as(video)
    assert torch.equal(out[outside], video[outside])


# ------------------------------------------------------------------------------------------------
# inputs


def test_masks_parse_from_box_image_and_video(tmp_path):
    box = box_mask("box:1,2,4,8", 3, 8, 6)
    assert box.shape == (3, 8, 6) and box.sum() == 3 * 3 * 6 and box[:, 2:8, 1:4].all()
    for bad, match in [
        ("box:1,2,3", "box:x0,y0,x1,y1"),
        ("box:0,0,7,8", "inside the 6x8"),
        ("box:3,0,3,8", "x0 < x1"),
        ("box:-1,0,3,8", "inside"),
    ]:
        with pytest.raises(ValueError, match=match):
            box_mask(bad, 3, 8, 6)
    image = np.zeros((8, 6, 3), np.uint8)
    image[2:5, 1:3] = 255
    Image.fromarray(image).save(tmp_path / "m.png")
    m = read_mask(str(tmp_path / "m.png"), 3, 8, 6)
    assert m.shape == (3, 8, 6) and m.sum() == 3 * 6 and m[:, 2:5, 1:3].all()
    frames = torch.zeros(3, 4, 8, 8)
    frames[:, 1, :4] = 1.0
    write_video(frames, tmp_path / "m.gif", fps=4)
    mv = read_mask(str(tmp_path / "m.gif"), 3, 8, 8)
    assert mv.shape == (3, 8, 8) and not mv[0].any() and mv[1, :4].all() and not mv[1, 4:].any()
    with pytest.raises(ValueError, match="is 6x8 but the input is 8x8"):
        read_mask(str(tmp_path / "m.png"), 3, 8, 8)
    with pytest.raises(ValueError, match="has 4 frames but the input has 5"):
        read_mask(str(tmp_path / "m.gif"), 5, 8, 8)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "black.png")
    with pytest.raises(ValueError, match="marks nothing"):
        read_mask(str(tmp_path / "black.png"), 3, 8, 8)
    with pytest.raises(FileNotFoundError, match="mask file not found"):
        read_mask(str(tmp_path / "none.png"), 3, 8, 8)


def test_inputs_are_cut_and_resized_with_a_notice_or_refused():
    video = torch.rand(3, 6, 16, 24)
    fitted, notes = fit_clip(video, 4, 8)
    assert fitted.shape == (3, 4, 8, 8) and len(notes) == 2
    assert "cut from 6 to its first 4 frames" in notes[0] and "resized from 24x16" in notes[1]
    same, none = fit_clip(video[:, :4, :8, :8], 4, 8)
    assert none == [] and torch.equal(same, video[:, :4, :8, :8])
    with pytest.raises(ValueError, match="has 6 frames; the model makes 8-frame clips"):
        fit_clip(video, 8, 8)
    m = torch.zeros(6, 16, 24, dtype=torch.bool)
    m[:, 4:12, 10:14] = True  # centred: survives the centre crop
    fm = fit_mask(m, 4, 8)
    assert fm.shape == (4, 8, 8) and fm.any() and not fm.all()


# ------------------------------------------------------------------------------------------------
# the command


@pytest.fixture(scope="module")
def files(tmp_path_factory, pipe):
    d = tmp_path_factory.mktemp("edit")
    pipe.save(d / "model")
    write_video(pipe.generate(PROMPTS[:1], [0])[0], d / "in.png", fps=4)
    (d / "corrupt.mp4").write_bytes(b"not a video at all")
    return d


def test_edit_command_writes_the_edit(files, capsys):
    out = files / "out.png"
    argv = ["edit", str(files / "in.png"), PROMPTS[1], "--model", str(files / "model")]
    assert cli.main([*argv, "--mask", "box:0,0,4,8", "--resample", "1", "-o", str(out)]) == 0
    edited, _ = read_video(out)
    original, _ = read_video(files / "in.png")
    torch.testing.assert_close(edited[..., 4:], original[..., 4:], atol=0, rtol=0)
    assert not torch.equal(edited[..., :4], original[..., :4])
    assert cli.main([*argv, "--strength", "0.5", "-o", str(files / "v2v.png")]) == 0
    assert "wrote" in capsys.readouterr().out
    long = torch.cat([original, original], dim=1)  # 8 frames of 8x8: cut to the model's 4
    write_video(torch.nn.functional.interpolate(long, size=(16, 16)), files / "long.png", fps=4)
    argv[1] = str(files / "long.png")
    with pytest.warns(UserWarning) as notices:
        assert cli.main([*argv, "--strength", "0.5", "-o", str(files / "cut.png")]) == 0
    said = [str(w.message) for w in notices]
    assert any("cut from 8 to its first 4 frames" in m for m in said)
    assert any("resized from 16x16 to 8x8" in m for m in said)
    assert read_video(files / "cut.png")[0].shape == (3, 4, 8, 8)


@pytest.mark.parametrize(
    "args, message",
    [
        (["in.png", "--strength", "0"], "--strength must be in (0, 1]"),
        (["in.png", "--strength", "1.2"], "--strength must be in (0, 1]"),
        (["in.png"], "give --mask"),
        (["missing.mp4", "--strength", "0.5"], "input video not found"),
        (["corrupt.mp4", "--strength", "0.5"], "cannot decode video"),
        (["in.png", "--mask", "box:0,0,9,8"], "must lie inside the 8x8 input"),
        (["in.png", "--mask", "{d}/wrong.png"], "is 4x4 but the input is 8x8"),
        (["in.png", "--mask", "box:0,0,4,4", "--resample", "-1"], "--resample"),
        (["in.png", "--strength", "0.5", "--layered"], "--layered needs --mask"),
        (["in.png", "--strength", "0.5", "--structure", "1.5"], "--structure must be in [0, 1]"),
        (["in.png", "--mask", "box:0,0,4,4", "--structure", "0.5"], "--structure guides video"),
        (["short.png", "--strength", "0.5"], "has 2 frames; the model makes 4-frame clips"),
        (["in.png", "--strength", "0.5", "--out", "{d}/x.txt"], "cannot write a video"),
    ],
)
def test_edit_command_bad_input_is_one_line_and_writes_nothing(files, capsys, args, message):
    Image.fromarray(np.full((4, 4, 3), 255, np.uint8)).save(files / "wrong.png")
    write_video(torch.rand(3, 2, 8, 8), files / "short.png", fps=4)
    out = files / "bad.mp4"
    rest = [a.replace("{d}", str(files)) for a in args[1:]]
    argv = ["edit", str(files / args[0]), *rest, "--model", str(files / "model")]
    capsys.readouterr()
    if "--out" not in rest:
        argv += ["-o", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vidiff: error:") and message in err[0]
    assert not out.exists() and not (files / "x.txt").exists()


def test_structure_guidance_gives_the_estimate_the_inputs_value_and_keeps_its_hue():
    g = torch.Generator().manual_seed(0)
    known = torch.rand(2, 3, 4, 8, 8, generator=g) * 2 - 1
    estimate = torch.rand(2, 3, 4, 8, 8, generator=g) * 2 - 1
    guided = structure_denoiser(lambda x, sigma: estimate, known, sigma_min=1.0)
    high, low = guided(estimate, torch.tensor([2.0, 0.5])), estimate
    assert torch.allclose(high[0].amax(0), known[0].amax(0), atol=1e-6)  # brightness: the input's
    shift = high[0] - estimate[0]
    assert torch.allclose(
        shift, shift[:1].expand_as(shift)
    )  # one shift for every channel: hue kept
    assert torch.equal(high[1], low[1])  # below sigma_min the estimate is untouched
    two = torch.tensor([2.0, 2.0])
    blurred = structure_denoiser(lambda x, sigma: estimate, known, 1.0, blur=3)(estimate, two)
    assert blurred.shape == estimate.shape and not torch.allclose(blurred, high)
    with pytest.raises(ValueError, match="blur must be"):
        structure_denoiser(lambda x, sigma: x, known, 1.0, blur=0)


def test_structure_in_edit_follows_the_input_and_zero_is_plain_sdedit(pipe):
    video, _ = _inputs()
    prompts, seeds = PROMPTS[:2], [3, 4]
    plain = pipe.edit(video, prompts, seeds, strength=1.0, steps=4)
    assert torch.equal(
        pipe.edit(video, prompts, seeds, strength=1.0, structure=0.0, steps=4), plain
    )
    kept = pipe.edit(video, prompts, seeds, strength=1.0, structure=1.0, steps=4)
    err = lambda out: float((out.amax(1) - video.amax(1)).abs().mean())
    assert err(kept) < 0.5 * err(plain)  # the brightness of the input, which generation ignores
    with pytest.raises(ValueError, match="structure must be in"):
        pipe.edit(video, prompts, seeds, strength=1.0, structure=2.0)
