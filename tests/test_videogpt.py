"""VideoGPT (vidiff/models/vqvae.py, vidiff/models/videogpt.py, their objectives) on tiny configs."""

from __future__ import annotations

import pytest
import torch

from vidiff.cli import main
from vidiff.data.video_io import read_video
from vidiff.eval.reconstruction import reconstruction_metrics
from vidiff.families import load_model
from vidiff.families.videogpt import VideoGPTPipeline
from vidiff.models.videogpt import VideoGPT, VideoGPTConfig, sample_codes
from vidiff.models.vqvae import VQVAE, VectorQuantizer, codebook_usage, vqvae_config
from vidiff.train.checkpoint import load_state


def tiny_gpt(axial: bool = False) -> VideoGPT:
    torch.manual_seed(0)
    cfg = VideoGPTConfig(vocab_size=6, text_len=3, codebook_size=5, num_codes=8, dim=16, depth=2,
                         num_heads=2, code_grid=(2, 2, 2), axial_positions=axial)  # fmt: skip
    return VideoGPT(cfg).eval()


def test_ema_codebook_moves_to_its_vectors_and_dead_codes_restart():
    torch.manual_seed(0)
    q = VectorQuantizer(num_codes=8, dim=2, decay=0.5, dead_threshold=0.5).train()
    grid = torch.stack([torch.arange(8.0), -torch.arange(8.0)], dim=1)  # well separated codes
    q.embedding.copy_(grid)
    q.embed_sum.copy_(grid)
    q.cluster_size.fill_(1.0)  # as if every code had been in use
    target = q.embedding[3].clone() + 0.05
    z = target.view(1, 2, 1, 1, 1).expand(2, 2, 1, 2, 2).contiguous()  # every vector near code 3
    zq, codes, commit = q(z)
    assert (codes == 3).all() and commit.shape == (2,)
    torch.testing.assert_close(zq, q.embedding[3].view(1, 2, 1, 1, 1).expand_as(z))
    before = (q.embedding[3] - target).norm()
    assert q.update(step=0) == 0  # cluster sizes 1 -> 0.5: not yet dead
    assert (q.embedding[3] - target).norm() < before  # the code moved toward its vectors
    assert q.pending_count.sum() == 0
    q(z)
    restarted = q.update(step=1)  # unused codes decay to 0.25 < 0.5: collapsed -> restarted
    assert restarted == 7 and int(q.restarts) == 7
    # every restarted code now sits on an encoder output of that step
    assert torch.allclose(q.embedding[[0, 1, 2, 4, 5, 6, 7]], target.expand(7, 2))
    # evaluation forwards gather nothing
    q.eval()
    q(z)
    assert q.pending_count.sum() == 0 and q.update(step=2) == 0


def test_a_fresh_codebook_starts_on_encoder_outputs():
    torch.manual_seed(0)
    q = VectorQuantizer(num_codes=6, dim=3, decay=0.99, dead_threshold=1.0).train()
    z = torch.randn(2, 3, 1, 4, 4)  # 32 vectors
    q(z)
    assert q.update(step=0) == 6  # nothing has a cluster size yet: all restarted on this batch
    vectors = z.permute(0, 2, 3, 4, 1).reshape(-1, 3)
    for code in q.embedding:
        assert (vectors - code).norm(dim=1).min() < 1e-6


def test_codebook_usage_is_reported():
    torch.manual_seed(0)
    vq = VQVAE(vqvae_config("vqvae-test")).eval()  # 3D convs, x4 time
    usage = codebook_usage(vq, torch.rand(3, 3, 5, 8, 8))
    assert set(usage) == {"codes_used", "usage", "perplexity", "alive", "restarts"}
    assert 1 <= usage["codes_used"] <= 16 and 1 <= usage["perplexity"] <= usage["codes_used"] + 1e-4
    # a collapsed codebook (every code but one far away) has perplexity 1
    vq.quantizer.embedding[1:] = 1e6
    collapsed = codebook_usage(vq, torch.rand(3, 3, 5, 8, 8))
    assert collapsed["codes_used"] == 1 and collapsed["perplexity"] == pytest.approx(1.0)
    x = torch.rand(2, 3, 16, 8, 8)
    assert vq.encode(x).shape == (2, 5, 2, 2)  # 16 frames padded to 17 -> 5 code frames
    rec, codes, _ = vq(x)
    assert rec.shape == x.shape and codes.shape == (2, 5, 2, 2)
    # the causal VAE's latent interface: the quantised vectors, decoded as the codes are, so
    # vidiff.eval.reconstruction scores a VQ-VAE like a VAE
    with torch.no_grad():
        z = vq.encode_latents(x)
        torch.testing.assert_close(vq.decode_latents(z, 16), vq.decode(vq.encode(x), 16))
        torch.testing.assert_close(vq.decode_latents(z, 16), rec)
    scores = reconstruction_metrics(vq, [{"video": v} for v in x.clamp(0, 1)], 2)
    assert set(scores) == {"psnr", "ssim", "colour_error"} and scores["psnr"] > 0


def test_the_per_frame_preset_codes_each_frame_nearly_alone():
    """vqvae-tiny is built like vae-shapes: a 16-frame 32x32 clip is 16 x 8 x 8 codes; the encoder
    is per-frame but for its two causal 3-frame downsampling convs, so a frame reaches its own code
    frame and the next four, never earlier ones, and the decoder is per-frame."""
    torch.manual_seed(0)
    vq = VQVAE(vqvae_config("vqvae-tiny")).eval()
    assert vq.code_shape(16, 32, 32) == (16, 8, 8)
    x = torch.rand(1, 3, 16, 32, 32) * 2 - 1
    with torch.no_grad():
        z = vq.encoder(x)
        y = x.clone()
        y[:, :, 5] = -y[:, :, 5]
        dz = (vq.encoder(y) - z).abs().amax(dim=(0, 1, 3, 4))
        codes = vq.quantizer.codes(z)
        d = vq.decode(codes)
        other = codes.clone()
        other[:, 5] = (other[:, 5] + 1) % vq.quantizer.num_codes
        dd = (vq.decode(other) - d).abs().amax(dim=(0, 1, 3, 4))
    assert (dz[5:10] > 0).all() and dz[:5].eq(0).all() and dz[10:].eq(0).all()
    assert dd[5] > 0 and torch.count_nonzero(dd) == 1


@pytest.mark.parametrize("axial", [False, True])
def test_causal_mask_future_codes_do_not_change_past_logits(axial):
    model = tiny_gpt(axial)
    text = torch.tensor([[1, 2, 3], [1, 4, 0]])
    codes = torch.randint(0, 5, (2, 8))
    logits = model(text, codes)
    assert logits.shape == (2, 8, 5)
    changed = codes.clone()
    changed[:, 4:] = (changed[:, 4:] + 1) % 5
    other = model(text, changed)
    torch.testing.assert_close(other[:, :5], logits[:, :5])  # logit i sees codes < i only
    assert not torch.allclose(other[:, 5:], logits[:, 5:])
    other_text = model(torch.tensor([[1, 2, 4], [1, 4, 0]]), codes)
    assert not torch.allclose(other_text[0, 0], logits[0, 0])  # the caption prefix is seen


@pytest.mark.parametrize("axial", [False, True])
def test_sampling_is_seeded_batch_independent_and_cached_correctly(axial):
    model = tiny_gpt(axial)
    text = torch.tensor([[1, 2, 3], [1, 4, 0]])
    gens = lambda seeds: [torch.Generator().manual_seed(s) for s in seeds]
    a = sample_codes(model, text, gens([0, 1]), temperature=1.0, top_k=0)
    b = sample_codes(model, text, gens([0, 1]))
    assert torch.equal(a, b) and a.shape == (2, 8)
    assert torch.equal(sample_codes(model, text[1:], gens([1])), a[1:])
    draws = {tuple(sample_codes(model, text[:1], gens([s]))[0].tolist()) for s in range(6)}
    assert len(draws) > 1
    # top-k 1 is greedy whatever the seed, and matches the uncached forward's argmax
    g0 = sample_codes(model, text, gens([0, 1]), top_k=1)
    g1 = sample_codes(model, text, gens([5, 6]), top_k=1)
    assert torch.equal(g0, g1)
    assert torch.equal(model(text, g0).argmax(-1), g0)
    with pytest.raises(ValueError, match="temperature"):
        sample_codes(model, text, gens([0, 1]), temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        sample_codes(model, text, gens([0, 1]), top_k=-1)


def test_cli_two_stages_train_resume_export_generate(tmp_path, capsys):
    tiny = ["data.num_frames=4", "data.size=8", "data.num_items=8", "train.batch_size=2",
            "train.log_every=1", "train.lr=1e-3"]  # fmt: skip
    vq_run, vq_dir = tmp_path / "vq", tmp_path / "vq-model"
    vq = ["train", "configs/shapes-vqvae.yaml", *tiny, "model.preset=vqvae-test"]
    assert main([*vq, "train.steps=3", f"train.out_dir={vq_run}"]) == 0
    assert main(["export", str(vq_run), "-o", str(vq_dir)]) == 0
    assert isinstance(VQVAE.load(vq_dir), VQVAE)
    # constant learning rate: a decay's schedule would depend on train.steps, which differ below
    gpt = ["train", "configs/shapes-videogpt.yaml", *tiny, "model.preset=videogpt-test",
           f"model.vae={vq_dir}", "train.ckpt_every=2", "train.decay_steps=0"]  # fmt: skip
    a, b = tmp_path / "a", tmp_path / "b"
    assert main([*gpt, "train.steps=4", f"train.out_dir={a}"]) == 0
    assert main([*gpt, "train.steps=2", f"train.out_dir={b}"]) == 0
    assert main([*gpt, "train.steps=4", f"train.out_dir={b}", "--resume"]) == 0
    sa, sb = load_state(a), load_state(b)
    for key in ("model", "ema"):
        flat = sa[key] if key == "model" else sa[key]["module"]
        other = sb[key] if key == "model" else sb[key]["module"]
        for k, v in flat.items():
            assert torch.equal(v, other[k]), (key, k)
    out = tmp_path / "model"
    assert main(["export", str(a), "-o", str(out)]) == 0
    pipe = load_model(out)
    assert isinstance(pipe, VideoGPTPipeline) and pipe.config.model.vae is None
    clip = tmp_path / "clip.mp4"
    argv = ["generate", "a red circle moving left", "--model", str(out), "--out", str(clip)]
    assert main([*argv, "--top-k", "4", "--temperature", "0.8"]) == 0
    assert read_video(clip)[0].shape[1] == 4
    capsys.readouterr()
    assert main([*argv, "--cfg", "2"]) != 0
    assert "--cfg: diffusion sampling options" in capsys.readouterr().err
    assert main([*argv, "--top-k", "-1"]) != 0
    assert "--top-k" in capsys.readouterr().err


def test_axial_positions_mark_each_code_and_need_the_grid():
    """The prior knows which grid cell it predicts (VideoGPT's axial positions): the same inputs at
    another offset of the grid give other logits, and a grid that is not num_codes is refused."""
    model = tiny_gpt(axial=True)
    start = torch.full((1, 1), model.start_code)
    here, there = model.code_inputs(start, 0), model.code_inputs(start, 5)
    assert not torch.allclose(here, there)
    assert torch.allclose(tiny_gpt().code_inputs(start, 0), tiny_gpt().code_inputs(start, 5))
    with pytest.raises(ValueError, match="code_grid"):
        VideoGPT(VideoGPTConfig(vocab_size=6, codebook_size=5, num_codes=8, code_grid=(2, 2, 3),
                                axial_positions=True))  # fmt: skip


def test_a_few_steps_reduce_the_prior_loss():
    model = tiny_gpt().train()
    text = torch.tensor([[1, 2, 3], [1, 4, 0]])
    codes = torch.randint(0, 5, (2, 8), generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    ce = lambda: torch.nn.functional.cross_entropy(model(text, codes).transpose(1, 2), codes)
    first = ce().item()
    for _ in range(20):
        opt.zero_grad()
        ce().backward()
        opt.step()
    assert ce().item() < 0.5 * first
