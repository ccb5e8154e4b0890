"""The causal video VAE: causality, image path, compression, tiling, training, GAN protocol, export,
latent cache, the trainer/CLI route and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vidiff.data.latents import LatentDataset, cache_latents, sample_latent
from vidiff.eval.reconstruction import colour_error, measure_scaling, psnr, ssim, tiling_metrics
from vidiff.models.vae import CausalVideoVAE, vae_config
from vidiff.nn.tiling import spatial_tiles
from vidiff.train.objectives.autoencoder import VAEObjective, ms_ssim_loss

ROOT = Path(__file__).resolve().parents[1]
MICRO = dict(base_channels=4, channel_mult=(1, 2, 2), temporal_downsample=(True, True))


def micro_vae(seed: int = 0, **overrides) -> CausalVideoVAE:
    torch.manual_seed(seed)
    return CausalVideoVAE(vae_config("vae-tiny", **{**MICRO, **overrides})).eval()


def micro_objective(seed: int = 0, **overrides) -> VAEObjective:
    torch.manual_seed(seed)
    return VAEObjective(CausalVideoVAE(vae_config("vae-tiny", **{**MICRO, **overrides})))


def clip(b: int = 2, t: int = 9, s: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, t, s, s, generator=g) * 2 - 1


# --------------------------------------------------------------------------------------------------
# geometry, causality, image path


def test_shapes_and_compression():
    vae = micro_vae()
    assert (vae.spatial_compression, vae.temporal_compression, vae.latent_channels) == (4, 4, 4)
    assert vae.latent_shape(17, 32, 32) == (4, 5, 8, 8)
    assert vae.latent_shape(1, 32, 32) == (4, 1, 8, 8)
    with torch.no_grad():
        z = vae.encode_latents(clip())
        assert z.shape == (2, 4, 3, 4, 4)
        assert vae.decode_latents(z).shape == (2, 3, 9, 16, 16)
    s8 = CausalVideoVAE(vae_config("vae-tiny-s8", base_channels=4))
    assert (s8.spatial_compression, s8.temporal_compression) == (8, 4)
    assert s8.latent_shape(17, 32, 32) == (4, 5, 4, 4)
    with torch.no_grad():
        assert s8.decode(s8.encode(clip(1, 5, 16)).mode()).shape == (1, 3, 5, 16, 16)


def test_causality_encoder_and_decoder():
    vae = micro_vae()
    x = clip(1, 13)
    x2 = x.clone()
    x2[:, :, 9] = 0.0
    with torch.no_grad():
        z, z2 = vae.encode(x).mean, vae.encode(x2).mean
    # latent frame j sees input frames <= 4 j: frame 9 reaches latent frame 3, never 0..2.
    torch.testing.assert_close(z2[:, :, :3], z[:, :, :3], rtol=0, atol=0)
    assert (z2[:, :, 3:] - z[:, :, 3:]).abs().max() > 1e-4
    with torch.no_grad():
        zz = z.clone()
        zz[:, :, 2] += 1.0  # latent frame 2 decodes to frames 5..8
        r, r2 = vae.decode(z), vae.decode(zz)
    torch.testing.assert_close(r2[:, :, :5], r[:, :, :5], rtol=0, atol=0)
    assert (r2[:, :, 5:] - r[:, :, 5:]).abs().max() > 1e-4


def test_image_path_is_the_first_latent_frame():
    vae = micro_vae()
    x = clip(2, 9)
    with torch.no_grad():
        zi = vae.encode_latents(x[:, :, :1])
        zv = vae.encode_latents(x)
        assert zi.shape == (2, 4, 1, 4, 4)
        torch.testing.assert_close(zi, zv[:, :, :1], rtol=0, atol=1e-5)
        img = vae.decode_latents(zi)
        assert img.shape == (2, 3, 1, 16, 16)
        torch.testing.assert_close(img, vae.decode_latents(zv)[:, :, :1], rtol=0, atol=1e-5)


def test_sixteen_frames_rule():
    vae = micro_vae()
    x = clip(1, 16)
    with pytest.raises(ValueError, match=r"T = 1 \+ 4k.*T=16.*pad_frames.*num_frames=16"):
        vae.encode(x)
    padded = vae.pad_frames(x)
    assert padded.shape[2] == 17
    torch.testing.assert_close(padded[:, :, 16], x[:, :, 15])
    assert vae.pad_frames(padded) is padded  # already 1 + 4k: untouched
    with torch.no_grad():
        z = vae.encode_latents(padded)
        assert vae.decode_latents(z, num_frames=16).shape[2] == 16
        # causal: latent frames 0..3 (input frames 0..12) do not see the repeated frame
        z_real = vae.encode_latents(x[:, :, :13])
        torch.testing.assert_close(z[:, :, :4], z_real, rtol=0, atol=1e-5)
        with pytest.raises(ValueError, match="num_frames=18"):
            vae.decode_latents(z, num_frames=18)


def test_spatial_first_levels_are_per_frame_and_stay_causal_and_chunkable():
    # time_kernel 1 at the full-resolution levels: 2D convs there, time mixed at the coarse level.
    vae = micro_vae(time_kernel=(1, 1, 3), temporal_downsample=(False, True))
    assert vae.encoder.conv_in.conv.weight.shape[2] == 1
    assert vae.encoder.mid.conv1.conv.weight.shape[2] == 3
    assert vae.decoder.conv_out.conv.weight.shape[2] == 1
    assert (vae.spatial_compression, vae.temporal_compression) == (4, 2)
    x = clip(1, 9)
    x2 = x.clone()
    x2[:, :, 5] = 0.0
    with torch.no_grad():
        z, z2 = vae.encode(x).mean, vae.encode(x2).mean
        assert z.shape == (1, 4, 5, 4, 4)
        # latent frame j sees input frames <= 2 j: frame 5 first reaches latent frame 3
        torch.testing.assert_close(z2[:, :, :3], z[:, :, :3], rtol=0, atol=0)
        assert (z2[:, :, 3:] - z[:, :, 3:]).abs().max() > 1e-4
        r = vae.decode(z)
        for tf in (1, 2):
            torch.testing.assert_close(vae.encode(x, tile_frames=tf).mean, z, rtol=0, atol=1e-5)
            torch.testing.assert_close(vae.decode(z, tile_frames=tf), r, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="time_kernel needs one entry >= 1 per level"):
        vae_config("vae-tiny", time_kernel=(1, 3))


def test_clear_errors():
    vae = micro_vae()
    with pytest.raises(ValueError, match="multiples of the spatial compression 4"):
        vae.encode(clip(1, 9, 18))
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        vae.encode(torch.zeros(3, 9, 16, 16))
    with pytest.raises(ValueError, match="latents"):
        vae.decode(torch.zeros(1, 3, 2, 4, 4))
    with pytest.raises(ValueError, match="unknown VAE preset 'vae-huge'"):
        vae_config("vae-huge")
    with pytest.raises(ValueError, match="chanels"):
        vae_config("vae-tiny", chanels=3)
    with pytest.raises(ValueError, match="temporal_downsample"):
        vae_config("vae-tiny", temporal_downsample=(True,))
    with pytest.raises(ValueError, match="tile_size"):
        vae.encode(clip(1, 9, 32), tile_size=6)


# --------------------------------------------------------------------------------------------------
# tiling


def test_temporal_chunks_equal_untiled():
    vae = micro_vae()
    x = clip(1, 17)
    with torch.no_grad():
        z = vae.encode(x).mean
        r = vae.decode(z)
        for tf in (1, 2, 3):
            torch.testing.assert_close(vae.encode(x, tile_frames=tf).mean, z, rtol=0, atol=1e-5)
            torch.testing.assert_close(vae.decode(z, tile_frames=tf), r, rtol=0, atol=1e-5)


def test_spatial_tiles_equal_untiled_with_enough_context():
    """Spatial tiles see a cropped halo of ``tile_context`` pixels: a halo that covers the receptive
    field (32 px here) gives the untiled result; a 16 px halo plus the blend comes close."""
    x = clip(1, 5, 64)
    rel = lambda a, b: ((a - b).abs().mean() / b.abs().mean()).item()
    for context, tol in ((32, 1e-5), (16, 0.1), (0, 1.0)):
        vae = micro_vae(tile_context=context, norm="rms")  # per-pixel norm: tiles can be exact
        with torch.no_grad():
            z = vae.encode(x).mean
            r = vae.decode(z)
            zt = vae.encode(x, tile_size=32).mean
            rt = vae.decode(z, tile_size=32)
            both = vae.decode(z, tile_size=32, tile_frames=1)
        assert rel(zt, z) < tol and rel(rt, r) < tol, context
        assert rel(both, rt) < 1e-5  # time chunks inside space tiles change nothing
    assert rel(rt, r) > 0.1  # without a halo the tiles do differ: the test above can fail
    vae = micro_vae(tile_context=32, norm="group")  # per-frame statistics: tiles only approximate
    with torch.no_grad():
        z = vae.encode(x).mean
        assert rel(vae.decode(z, tile_size=32), vae.decode(z)) < 0.25
    pool = lambda a: torch.nn.functional.avg_pool3d(a, (1, 4, 4))
    y = spatial_tiles(pool, x, 16, 4, True, 0.25)
    torch.testing.assert_close(y, pool(x), rtol=0, atol=1e-6)  # the blend itself is exact


# --------------------------------------------------------------------------------------------------
# training


def test_training_loss_is_seeded_and_batch_independent():
    vae = micro_objective().train()
    v = (clip(3) + 1) / 2
    with torch.no_grad():
        a = vae.training_loss(v, ["x"] * 3, [1, 2, 3])
        b = vae.training_loss(v[1:2], ["x"], [2])
        c = vae.training_loss(v, ["x"] * 3, [1, 2, 4])
    assert a.shape == (3,)
    torch.testing.assert_close(a[1:2], b, rtol=1e-5, atol=1e-6)
    assert a[2] != c[2] and a[0] == c[0]


def test_recon_falls_and_kl_term_pulls_the_posterior():
    from vidiff.data import build_dataset

    ds = build_dataset("shapes", num_items=2, num_frames=9, size=16, seed=0)
    v = torch.stack([ds[i]["video"] for i in range(2)])

    def run(kl_weight):
        obj = micro_objective(kl_weight=kl_weight).train()
        vae = obj.vae
        opt = torch.optim.Adam(obj.parameters(), lr=3e-3)

        def parts():
            with torch.no_grad():
                post = vae.encode(v * 2 - 1)
                rec = vae.decode(post.mode())
            return (rec - (v * 2 - 1)).abs().mean().item(), post.kl().mean().item()

        rec0, _ = parts()
        for step in range(30):
            loss = obj.training_loss(v, ["x", "x"], [step, step + 100]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return rec0, *parts()

    rec0, rec1, kl_free = run(0.0)
    _, _, kl_pulled = run(1.0)  # a weight large enough to act within 30 steps
    assert rec1 < 0.7 * rec0
    assert kl_pulled < 0.8 * kl_free  # the KL term pulls the posterior towards N(0, I)


def test_gan_protocol():
    obj = micro_objective(gan_weight=0.5, disc_start=2, adaptive_gan_weight=True).train()
    v = (clip(2) + 1) / 2
    (extra,) = obj.extra_steps()
    assert extra.name == "d" and extra.parameters == list(obj.discriminator.parameters())
    obj.begin_step(0)
    assert extra.loss(v, None, [0, 1]) is None  # before disc_start
    base = obj.training_loss(v, None, [0, 1])
    obj.begin_step(2)
    with_gan = obj.training_loss(v, None, [0, 1])
    assert not torch.allclose(base, with_gan)
    with_gan.mean().backward()
    assert all(p.grad is None for p in extra.parameters)  # generator step only
    d = extra.loss(v, None, [0, 1])
    assert d.shape == (2,) and (d >= 0).all()
    d.mean().backward()
    assert all(p.grad is not None for p in extra.parameters)
    assert not any(k.startswith("discriminator") for k in obj.vae.state_dict())
    assert micro_objective().extra_steps() == []  # gan_weight 0: no discriminator
    with pytest.raises(ValueError, match="disc_type"):
        vae_config("vae-tiny", disc_type="4d")


def test_objective_reads_checkpoints_of_the_single_module_vae():
    """Runs written when the VAE carried its loss (keys encoder.*, decoder.*, discriminator.*)."""
    obj = micro_objective(gan_weight=0.5)
    legacy = {k.removeprefix("vae."): v + 1 for k, v in obj.state_dict().items()}
    fresh = micro_objective(seed=1, gan_weight=0.5)
    fresh.load_state_dict(legacy)
    for k, v in obj.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v + 1), k


# --------------------------------------------------------------------------------------------------
# persistence, scaling, metrics, latent cache


def test_save_load_round_trip(tmp_path):
    obj = micro_objective(scaling_factor=0.5, shift_factor=0.1, gan_weight=0.1)
    vae = obj.vae
    obj.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["arch"] == "vae" and meta["vae"]["scaling_factor"] == 0.5
    assert meta["vae"]["gan_weight"] == 0.0  # the export carries no discriminator
    loaded = CausalVideoVAE.load(tmp_path / "m")
    x = clip(1)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_latents(x), vae.encode_latents(x))
    with pytest.raises(FileNotFoundError, match="config.json"):
        CausalVideoVAE.load(tmp_path / "nowhere")


def test_scaling_and_metrics():
    from vidiff.data import build_dataset

    ds = build_dataset("shapes", num_items=6, num_frames=9, size=16, seed=0)
    vae = micro_vae()
    scale, shift = measure_scaling(vae, ds, num_clips=6, batch_size=3)
    vae.config.scaling_factor, vae.config.shift_factor = scale, shift
    with torch.no_grad():
        z = torch.cat([vae.encode_latents(ds[i]["video"][None] * 2 - 1) for i in range(6)])
    assert abs(z.std().item() - 1) < 1e-3 and abs(z.mean().item()) < 1e-3
    v = ds[0]["video"][None]
    assert psnr(v, v).item() == pytest.approx(100.0)  # mse clamped at 1e-10
    assert ssim(v, v).item() == pytest.approx(1.0, abs=1e-5)
    noisy = (v + 0.1 * torch.randn_like(v)).clamp(0, 1)
    assert 15 < psnr(noisy, v).item() < 25 and ssim(noisy, v).item() < 0.9
    assert ms_ssim_loss(v * 2 - 1, v * 2 - 1).abs().item() < 1e-5


def test_colour_error_reads_the_objects_colour_only():
    y = torch.zeros(1, 3, 2, 8, 8)
    y[:, 0, :, 2:4, 2:4] = 1.0  # a red square on black
    assert colour_error(y, y).item() == 0.0
    x = y.clone()
    x[:, 1, :, 2:4, 2:4] = 0.2  # the square turns orange: green +0.2 on its pixels
    assert colour_error(x, y).item() == pytest.approx(255 * 0.2 / 3)
    x = y.clone()
    x[:, :, :, 6:, 6:] = 0.5  # a grey smudge on the background is not a colour shift
    assert colour_error(x, y).item() == 0.0


def test_tiling_metrics_find_seams_only_where_tiles_are_approximate():
    from vidiff.data import build_dataset

    ds = build_dataset("shapes", num_items=2, num_frames=17, size=32, seed=0)
    vae = micro_vae(norm="rms")  # channel-only norm: chunks and tiles (with full context) exact
    m = tiling_metrics(vae, ds, tile_frames=1, tile_size=16, num_clips=2)
    assert m["max_diff_chunked"] < 1e-3 and m["max_diff_tiled"] < 1e-3
    assert m["psnr_chunked"] == pytest.approx(m["psnr_whole"], abs=1e-3)
    vae.config.tile_context = 0  # no halo: the tiles' borders differ from the whole frame's
    m = tiling_metrics(vae, ds, tile_frames=1, tile_size=16, num_clips=2)
    assert m["max_diff_tiled"] > 0.1 and m["max_diff_chunked"] < 1e-3
    assert set(m) >= {"psnr_tile_seams", "psnr_tile_elsewhere", "psnr_chunk_border_frames"}


def test_latent_cache_round_trip(tmp_path):
    from vidiff.data import build_dataset

    ds = build_dataset("shapes", num_items=5, num_frames=8, size=16, seed=3)  # 8 -> padded to 9
    vae = micro_vae(scaling_factor=2.0, shift_factor=0.1)
    root = cache_latents(vae, ds, tmp_path / "cache", batch_size=2, shard_size=2)
    assert sorted(p.name for p in root.glob("shard-*")) == [
        "shard-00000.safetensors",
        "shard-00001.safetensors",
        "shard-00002.safetensors",
    ]
    lat = LatentDataset(root, as_video=True)
    assert len(lat) == 5 and lat.num_frames == 8 and lat.latent_shape == (4, 3, 4, 4)
    for i in (0, 3, 4):
        item = lat[i]
        with torch.no_grad():
            ref = vae.encode_latents(vae.pad_frames(ds[i]["video"][None] * 2 - 1))[0]
        torch.testing.assert_close(item["latent"], ref, rtol=1e-5, atol=1e-5)
        assert item["video"] is item["latent"]
        assert item["caption"] == ds[i]["caption"]
        torch.testing.assert_close(
            item["gt"]["objects"][0]["centroids"], ds[i]["gt"]["objects"][0]["centroids"]
        )
    s = sample_latent(lat[0], torch.Generator().manual_seed(0))
    assert s.shape == lat[0]["latent"].shape and not torch.equal(s, lat[0]["latent"])
    with torch.no_grad():
        assert vae.decode_latents(lat[0]["latent"][None], num_frames=lat.num_frames).shape == (
            1,
            3,
            8,
            16,
            16,
        )
    with pytest.raises(IndexError):
        lat[5]
    with pytest.raises(ValueError, match="already holds"):
        cache_latents(vae, ds, root)
    with pytest.raises(FileNotFoundError, match="index.json"):
        LatentDataset(tmp_path / "nowhere")


def test_latent_cache_is_written_whole_or_not_at_all(tmp_path):
    """An encode that fails half-way leaves no folder (and no temporary one); an empty folder may
    receive a cache; a cache of another format is refused by name."""
    from vidiff.data import build_dataset

    ds = build_dataset("shapes", num_items=4, num_frames=8, size=16, seed=3)

    class Ragged(torch.utils.data.Dataset):  # the second batch is smaller: refused mid-way
        def __len__(self):
            return 4

        def __getitem__(self, i):
            item = dict(ds[i])
            item["video"] = item["video"][..., :8, :8] if i >= 2 else item["video"]
            return item

    vae = micro_vae()
    with pytest.raises(ValueError, match="share one shape"):
        cache_latents(vae, Ragged(), tmp_path / "broken", batch_size=2, shard_size=1)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "empty").mkdir()
    root = cache_latents(vae, ds, tmp_path / "empty", batch_size=4)
    assert len(LatentDataset(root)) == 4 and sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
    index = json.loads((root / "index.json").read_text())
    (root / "index.json").write_text(json.dumps({**index, "format": "vidiff-latents-1"}))
    with pytest.raises(ValueError, match="vidiff-latents-1.*encode it again"):
        LatentDataset(root)


# --------------------------------------------------------------------------------------------------
# the trainer and CLI: `vidiff train` / `--resume` / `vidiff export` on a micro VAE config

MICRO_RUN = [
    "data.num_frames=9",
    "data.size=16",
    "data.num_items=32",
    "model.net.base_channels=4",
    "model.net.gan_weight=0.1",
    "model.net.disc_start=2",
    "model.net.disc_channels=4",
    "train.batch_size=2",
    "train.log_every=1",
    "train.ckpt_every=2",
    "train.warmup_steps=1",
]


def test_cli_train_resume_export(tmp_path):
    from vidiff.cli import main
    from vidiff.train.checkpoint import load_state
    from vidiff.train.logging import read_metrics

    cfg = str(ROOT / "configs" / "vae-tiny.yaml")
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["train", cfg, *MICRO_RUN, "train.steps=4", f"train.out_dir={a}"]) == 0
    assert main(["train", cfg, *MICRO_RUN, "train.steps=2", f"train.out_dir={b}"]) == 0
    assert main(["train", cfg, *MICRO_RUN, "train.steps=4", f"train.out_dir={b}", "--resume"]) == 0
    sa, sb = load_state(a), load_state(b)
    assert "d_optimizer" in sa and sa["step"] == 4
    assert any(k.startswith("discriminator.") for k in sa["model"])
    for key in ("model", "ema"):
        flat_a = sa[key] if key == "model" else sa[key]["module"]
        flat_b = sb[key] if key == "model" else sb[key]["module"]
        for k in flat_a:
            assert torch.equal(flat_a[k], flat_b[k]), (key, k)
    rows = read_metrics(a / "metrics.jsonl")
    assert [("d_loss" in r) for r in rows] == [True] * 4
    assert rows[0]["d_loss"] == 0 and rows[-1]["d_loss"] > 0  # the GAN starts at disc_start=2
    out = tmp_path / "model"
    assert main(["export", str(a), "-o", str(out)]) == 0
    vae = CausalVideoVAE.load(out)
    ema = sa["ema"]["module"]
    for k, v in vae.state_dict().items():
        assert torch.equal(v, ema[f"vae.{k}"]), k
    with pytest.raises(ValueError, match="sample_every"):
        from vidiff.config import load_config
        from vidiff.train.loop import train

        train(
            load_config(
                cfg, [*MICRO_RUN, "train.sample_every=1", f"train.out_dir={tmp_path / 'c'}"]
            )
        )


def test_cli_vae_eval_records_figures_that_models_lists(tmp_path, capsys):
    from vidiff.cli import main
    from vidiff.commands.models import table
    from vidiff.registry import describe_model

    folder = tmp_path / "vae-micro"
    micro_vae(time_kernel=(1, 1, 3), temporal_downsample=(False, True)).save(folder)
    args = ["vae", "eval", str(folder), "--num-clips", "2", "--num-frames", "5", "--size", "16"]
    assert main([*args, "--seams", "--record"]) == 0
    out = capsys.readouterr().out
    assert "photos: PSNR" in out and "colour error" in out and "seams (shapes, 33 x 64 x 64)" in out
    figures = json.loads((folder / "eval.json").read_text())
    row = figures["rows"][0]
    assert {"psnr", "colour_error", "psnr_balls", "psnr_photos", "seams_max_diff_tiled"} <= set(row)
    assert figures["command"].endswith("--size 16 --seams")
    entry = describe_model(folder)
    assert entry.kind == "video VAE" and entry.temporal_compression == 2
    assert "any (1+2k frames)" in table([entry]) and "PSNR" in table([entry])
