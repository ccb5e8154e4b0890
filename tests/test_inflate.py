"""Inflation (issue 18, route B): image models -> video models with identity temporal layers,
AnimateDiff MotionAdapter interop both ways, temporal-only training, and bad-input errors.

Everything runs on tiny random models saved to tmp folders (safetensors), offline; the diffusers
and transformers references come from the ``hf`` extra.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from tests.test_text import _save_tokenizer
from tests.test_train import Blobs
from vidiff.cli import main
from vidiff.config import load_config
from vidiff.errors import UserError
from vidiff.models.inflate import build_inflated, inflate, is_temporal
from vidiff.pipeline import VideoPipeline

UNET = dict(
    block_out_channels=(32, 64),
    layers_per_block=1,
    cross_attention_dim=32,
    norm_num_groups=8,
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    attention_head_dim=2,
)
ADAPTER = dict(
    block_out_channels=(32, 64),
    motion_layers_per_block=1,
    motion_num_attention_heads=2,
    motion_norm_num_groups=8,
    motion_max_seq_length=16,
)


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    """A tiny SD pipeline folder (unet, vae, CLIP text encoder + tokenizer, scheduler) and a
    matching MotionAdapter folder, all random, all safetensors."""
    from diffusers import AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    UNet2DConditionModel(**UNET).save_pretrained(root / "sd" / "unet")
    AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
    ).save_pretrained(root / "sd" / "vae")
    n = _save_tokenizer(root / "sd" / "tokenizer", bos=True)
    clip = CLIPTextConfig(
        vocab_size=n,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        max_position_embeddings=16,
        pad_token_id=0,
        bos_token_id=3,
        eos_token_id=1,
    )
    CLIPTextModel(clip).save_pretrained(root / "sd" / "text_encoder")
    DDIMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012
    ).save_pretrained(root / "sd" / "scheduler")
    index = {name: ["x", "y"] for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler")}
    (root / "sd" / "model_index.json").write_text(json.dumps(index))
    # A bare CLIP folder (text encoder + tokenizer together) for a bare UNet source.
    shutil.copytree(root / "sd" / "text_encoder", root / "clip")
    for f in (root / "sd" / "tokenizer").iterdir():
        shutil.copy(f, root / "clip")
    adapter = MotionAdapter(**ADAPTER)
    with torch.no_grad():  # diffusers' init is random already; make the output projections count
        for name, p in adapter.named_parameters():
            if "proj_out" in name:
                p.normal_(0, 0.2)
    adapter.save_pretrained(root / "adapter")
    return root


def _unet(hf_dirs):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(hf_dirs / "sd" / "unet").eval()


def _inputs(t=4, b=2):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(b, 4, t, 8, 8, generator=g)
    return x, torch.tensor([10.0, 700.0])[:b], torch.randn(b, 7, 32, generator=g)


# --------------------------------------------------------------------------------------------------
# identity at init


def test_inflated_diffusers_unet_equals_image_unet_per_frame(hf_dirs, tmp_path):
    out = inflate(hf_dirs / "sd" / "unet", tmp_path / "v", text_encoder=str(hf_dirs / "clip"))
    pipe = VideoPipeline.load(out)
    assert pipe.config.model.arch == "sd_unet" and pipe.net.config.motion
    unet = _unet(hf_dirs)
    x, t, ctx = _inputs()
    with torch.no_grad():
        video = pipe.net(x, t, context=ctx)
        frames = torch.stack([unet(x[:, :, i], t, ctx).sample for i in range(x.shape[2])], 2)
    assert (video - frames).abs().max() <= 1e-5
    assert frames.abs().max() > 0.1  # a real comparison, not zeros
    # spatial parameters keep their image-model names: the image checkpoint loads by name
    from safetensors.torch import load_file

    image = load_file(str(hf_dirs / "sd" / "unet" / "diffusion_pytorch_model.safetensors"))
    net = pipe.net.state_dict()
    assert all(torch.equal(net[k], v) for k, v in image.items())


def _vidiff_image_model(tmp_path, net: str = ""):
    cfg = load_config(
        None,
        [
            "data.num_frames=1",
            "data.size=8",
            "model.frame_conditioning=false",
            "model.net={model_channels: 8, channel_mult: [1, 2], attention_resolutions: [2],"
            f" head_dim: 8, frame_embedding: true{net}}}",
            "model.text={vocab: [a, red, square, moving, right], dim: 16, depth: 1}",
        ],
    )
    torch.manual_seed(0)
    pipe = VideoPipeline(cfg.pipeline_config())
    with torch.no_grad():  # a "trained" image model: no zero-initialised output anywhere
        for p in pipe.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return pipe, pipe.save(tmp_path / ("image" + net.replace(",", "").replace(" ", "_")))


def test_inflated_vidiff_image_model_equals_it_per_frame(tmp_path):
    image, src = _vidiff_image_model(tmp_path)
    video = VideoPipeline.load(inflate(src, tmp_path / "video", num_frames=4))
    assert video.num_frames == 4 and video.config.model.arch == "unet3d"
    x = torch.randn(2, 3, 4, 8, 8)
    t = torch.tensor([0.3, 500.0])
    cond = image.encode_prompts(["a red square", "moving right"])
    with torch.no_grad():
        out = video.net(x, t, **cond)
        ref = torch.cat([image.net(x[:, :, i : i + 1], t, **cond) for i in range(4)], 2)
    assert (out - ref).abs().max() <= 1e-5 and ref.abs().max() > 0.1
    # and the temporal layers are really there: moving them changes the video output
    with torch.no_grad():
        for name, p in video.named_parameters():
            if is_temporal("unet3d", name):
                p.add_(0.1 * torch.randn_like(p))
        assert not torch.allclose(video.net(x, t, **cond), out)


# --------------------------------------------------------------------------------------------------
# AnimateDiff interop


def test_motion_adapter_matches_diffusers_unet_motion_model(hf_dirs, tmp_path):
    from diffusers import MotionAdapter, UNetMotionModel

    out = inflate(
        hf_dirs / "sd",
        tmp_path / "v",
        motion_adapter=hf_dirs / "adapter",
        num_frames=4,
    )
    pipe = VideoPipeline.load(out)
    ref = UNetMotionModel.from_unet2d(
        _unet(hf_dirs), MotionAdapter.from_pretrained(hf_dirs / "adapter")
    ).eval()
    x, t, ctx = _inputs()
    with torch.no_grad():
        mine = pipe.net(x, t, context=ctx)
        theirs = ref(x, t, ctx.repeat_interleave(x.shape[2], 0)).sample
        per_frame = torch.stack([_unet(hf_dirs)(x[:, :, i], t, ctx).sample for i in range(4)], 2)
    assert (mine - theirs).abs().max() <= 1e-4
    assert (mine - per_frame).abs().max() > 1e-2  # the adapter does move things

    # export-motion: diffusers loads the folder, and it is the adapter we loaded
    assert main(["export-motion", str(out), "-o", str(tmp_path / "ad")]) == 0
    again = MotionAdapter.from_pretrained(tmp_path / "ad")
    original = MotionAdapter.from_pretrained(hf_dirs / "adapter").state_dict()
    assert again.state_dict().keys() == original.keys()
    assert all(torch.equal(v, original[k]) for k, v in again.state_dict().items())


def test_export_motion_round_trip_of_trained_modules(hf_dirs, tmp_path):
    from diffusers import MotionAdapter, UNetMotionModel

    pipe = build_inflated(hf_dirs / "sd", num_frames=4)
    with torch.no_grad():  # "training": the motion modules move away from identity
        for name, p in pipe.named_parameters():
            if is_temporal("sd_unet", name):
                p.add_(0.05 * torch.randn_like(p))
    pipe.save(tmp_path / "trained")
    assert main(["export-motion", str(tmp_path / "trained"), "-o", str(tmp_path / "ad")]) == 0
    ref = UNetMotionModel.from_unet2d(
        _unet(hf_dirs), MotionAdapter.from_pretrained(tmp_path / "ad")
    ).eval()
    x, t, ctx = _inputs()
    with torch.no_grad():
        err = (pipe.net(x, t, context=ctx) - ref(x, t, ctx.repeat_interleave(4, 0)).sample).abs()
    assert err.max() <= 1e-4


# --------------------------------------------------------------------------------------------------
# Stable Diffusion pipeline folder


def test_sd_pipeline_source(hf_dirs, tmp_path):
    from diffusers import AutoencoderKL

    out = inflate(hf_dirs / "sd", tmp_path / "v", num_frames=3)
    # the folder stands alone: the CLIP text encoder and tokenizer travel inside it
    assert json.loads((out / "config.json").read_text())["model"]["text"]["name_or_path"] == "."
    pipe = VideoPipeline.load(shutil.move(out, tmp_path / "moved"))
    assert pipe.text_encoder.config.name_or_path == str(tmp_path / "moved")
    dc = pipe.config.diffusion
    assert (dc.parameterization, dc.schedule) == ("eps", "scaled_linear")
    assert pipe.sample_shape == (4, 3, 8, 8) and pipe.size == 16
    # the SD VAE: per-frame scaled posterior means
    vae = AutoencoderKL.from_pretrained(hf_dirs / "sd" / "vae").eval()
    video = torch.rand(1, 3, 3, 16, 16)
    with torch.no_grad():
        z = pipe.to_model_space(video)
        ref = vae.encode(video[:, :, 1] * 2 - 1).latent_dist.mode() * vae.config.scaling_factor
    assert (z[:, :, 1] - ref).abs().max() <= 1e-5
    # c_noise is the DDPM timestep: the denoiser at the noise level of t = 500 calls the U-Net at 500
    sigma = pipe.schedule.sigmas[500].float().reshape(1)
    x, _, _ = _inputs(t=3, b=1)
    cond = pipe.encode_prompts(["a red square"])
    with torch.no_grad():
        d = pipe.denoiser(x, sigma, **cond)
        eps = _unet(hf_dirs)(
            (x / (1 + sigma**2).sqrt())[0].permute(1, 0, 2, 3),
            torch.tensor(500.0),
            cond["context"].expand(3, -1, -1),
        ).sample
    assert (d - (x - sigma * eps.permute(1, 0, 2, 3)[None])).abs().max() <= 1e-4
    # and it generates
    out = pipe.generate(["a red square"], [0], steps=2)
    assert out.shape == (1, 3, 3, 16, 16) and torch.isfinite(out).all()


# --------------------------------------------------------------------------------------------------
# temporal-only training


def test_temporal_only_training_keeps_the_image_model(tmp_path):
    from vidiff.train.checkpoint import latest_checkpoint, load_state
    from vidiff.train.loop import train

    _, src = _vidiff_image_model(tmp_path)
    init = inflate(src, tmp_path / "video", num_frames=4)
    before = VideoPipeline.load(init).state_dict()
    cfg = load_config(
        "configs/shapes-unet-tiny-inflated.yaml",
        [
            f"model.init={init}",
            f"train.out_dir={tmp_path / 'run'}",
            "train.steps=3",
            "train.batch_size=2",
            "train.ckpt_every=3",
            "train.warmup_steps=1",
            "train.ema_decay=0.5",
            "data.num_frames=4",
            "data.size=8",
        ],
    )
    assert cfg.train.trainable == "temporal"
    result = train(cfg, datasets=(Blobs(frames=4, size=8), None), progress=False)
    temporal = {k for k in before if is_temporal("unet3d", k)}
    for module in (result.model, result.ema.module):
        after = module.state_dict()
        frozen = [k for k in before if k not in temporal]
        assert frozen and all(torch.equal(after[k], before[k]) for k in frozen)
        assert any(not torch.equal(after[k], before[k]) for k in temporal)
    # the optimiser holds state for the temporal parameters only
    state = load_state(latest_checkpoint(tmp_path / "run"))
    held = [s for s in state["optimizer"]["state"].values()]
    params = dict(result.model.named_parameters())
    n_temporal = sum(1 for k in params if is_temporal("unet3d", k))
    assert len(held) == n_temporal < len(params)


# --------------------------------------------------------------------------------------------------
# bad input: one clear error, nothing written


def _refused(tmp_path, match, *args, **kw):
    out = tmp_path / "out"
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        inflate(*args, out=out, **kw)
    assert not out.exists()


def test_bad_sources_and_adapters(hf_dirs, tmp_path):
    from diffusers import MotionAdapter

    (tmp_path / "empty").mkdir()
    _refused(tmp_path, "empty folder", tmp_path / "empty")
    # a video model is not an image model
    video = inflate(hf_dirs / "sd" / "unet", tmp_path / "video", text_encoder=str(hf_dirs / "clip"))
    _refused(tmp_path, r"is a video model \(video.num_frames=16\)", video)
    _, image = _vidiff_image_model(tmp_path)
    vid = inflate(image, tmp_path / "vid", num_frames=4)
    _refused(tmp_path, r"video model \(video.num_frames=4\)", vid)
    _, layout = _vidiff_image_model(tmp_path, ", layout_prior: true")
    _refused(tmp_path, "layout_prior=True", layout)
    # a pipeline lacking a component
    broken = tmp_path / "broken"
    shutil.copytree(hf_dirs / "sd", broken)
    shutil.rmtree(broken / "vae")
    _refused(tmp_path, "lacks vae", broken)
    # pickled weights only
    pickled = tmp_path / "pickled"
    shutil.copytree(hf_dirs / "sd" / "unet", pickled)
    (pickled / "diffusion_pytorch_model.safetensors").rename(
        pickled / "diffusion_pytorch_model.bin"
    )
    _refused(tmp_path, "safetensors only", pickled, text_encoder=str(hf_dirs / "clip"))
    # a bare UNet without a text encoder
    _refused(tmp_path, "--text-encoder", hf_dirs / "sd" / "unet")
    # adapters that do not fit: widths, block count
    for name, kw, match in (
        ("wide", dict(block_out_channels=(32, 96)), r"block_out_channels \[32, 96\].*\[32, 64\]"),
        ("deep", dict(block_out_channels=(32, 64, 64)), "has 3 blocks, the U-Net has 2"),
    ):
        MotionAdapter(**{**ADAPTER, **kw}).save_pretrained(tmp_path / name)
        _refused(tmp_path, match, hf_dirs / "sd", motion_adapter=tmp_path / name)
    # the CLI says it in one line
    assert main(["inflate", str(tmp_path / "empty"), "-o", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_trainable_and_init_errors(tmp_path):
    from vidiff.train.finetune import resolve_init, set_trainable, trainable_names

    image, src = _vidiff_image_model(tmp_path)
    names = trainable_names(image, ["denoiser.net.input_conv.*"], "unet3d")
    assert names == ["denoiser.net.input_conv.weight", "denoiser.net.input_conv.bias"]
    with pytest.raises(ValueError, match="matches no parameter"):
        trainable_names(image, ["nothing.*"], "unet3d")
    with pytest.raises(ValueError, match="no temporal layers"):
        set_trainable(image, "temporal", "dit")
    assert set_trainable(image, ["denoiser.net.out_conv.*"], "unet3d") == 2
    cfg = load_config(None, [f"model.init={src}", "model.arch=dit"])
    with pytest.raises(ValueError, match=r"remove model.arch"):
        resolve_init(cfg)
    cfg = resolve_init(load_config(None, [f"model.init={src}", "diffusion.p_uncond=0.2"]))
    assert cfg.model.net["model_channels"] == 8 and cfg.diffusion.p_uncond == 0.2
    # a shipped model's name works as model.init in the library's train() too, not only in the CLI
    from vidiff.registry import resolve_config_models
    from vidiff.runtime import DEFAULT_MODEL
    from vidiff.train.loop import train

    named = load_config(None, ["model.init=default"])
    assert resolve_config_models(named).model.init == str(DEFAULT_MODEL)
    with pytest.raises(UserError, match="model.init no-such-model: no such model folder"):
        train(load_config(None, ["model.init=no-such-model", f"train.out_dir={tmp_path / 'r'}"]))
    assert not (tmp_path / "r").exists()


def test_temporal_only_training_refuses_image_batches(tmp_path):
    """Image batches (1 frame) pass no temporal layer: refused before the first step, nothing written."""
    from tests.test_pipeline import micro_config
    from vidiff.train.loop import train

    out = tmp_path / "run"
    cfg = micro_config(
        "data.image_ratio=0.5", "train.trainable=temporal", "train.steps=2", f"train.out_dir={out}"
    )
    with pytest.raises(ValueError, match=r"trainable=temporal trains nothing on image batches"):
        train(cfg, progress=False)
    assert not (out / "checkpoints").exists()


def test_sd_unet_gradient_checkpointing_gives_the_same_gradients():
    import dataclasses

    from vidiff.models.sd_unet import SD_UNET_PRESETS, SDUNet

    cfg = dataclasses.replace(SD_UNET_PRESETS["sd-tiny"], motion=True)
    grads = []
    for flag in (False, True):
        torch.manual_seed(0)
        net = SDUNet(dataclasses.replace(cfg, gradient_checkpointing=flag)).train()
        x, t, ctx = _inputs(t=3)
        net(x, t, context=ctx).square().mean().backward()
        grads.append({n: p.grad for n, p in net.named_parameters()})
    assert all(torch.allclose(grads[0][n], grads[1][n], atol=1e-6) for n in grads[0])


def test_sd2_layout_loads_and_matches_per_frame(tmp_path):
    """SD 2.x layout: linear projections in the spatial transformers, heads per block."""
    from diffusers import UNet2DConditionModel

    from vidiff.interop.diffusers import load_unet
    from vidiff.models.sd_unet import SDUNet, SDUNetConfig

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        **{**UNET, "use_linear_projection": True, "attention_head_dim": (2, 4)}
    ).eval()
    unet.save_pretrained(tmp_path / "unet")
    fields, state = load_unet(tmp_path / "unet")
    net = SDUNet(SDUNetConfig(**fields)).eval()
    net.load_state_dict(state)
    x, t, ctx = _inputs(t=2)
    with torch.no_grad():
        ref = torch.stack([unet(x[:, :, i], t, ctx).sample for i in range(2)], 2)
        assert (net(x, t, context=ctx) - ref).abs().max() <= 1e-5


def test_training_an_inflated_sd_pipeline(hf_dirs, tmp_path):
    """model.init from a Stable Diffusion folder: latents from its VAE, prompts from its CLIP, only
    the motion modules move."""
    from vidiff.train.loop import train

    init = inflate(hf_dirs / "sd", tmp_path / "v", num_frames=2)
    before = VideoPipeline.load(init).state_dict()
    cfg = load_config(
        "configs/shapes-unet-tiny-inflated.yaml",
        [
            f"model.init={init}",
            f"train.out_dir={tmp_path / 'run'}",
            "train.steps=2",
            "train.batch_size=2",
            "train.ckpt_every=2",
            "train.warmup_steps=1",
            "train.gradient_checkpointing=true",
            "data.num_frames=2",
            "data.size=16",
        ],
    )
    result = train(cfg, datasets=(Blobs(frames=2, size=16), None), progress=False)
    after = result.model.state_dict()
    moved = [k for k in before if not torch.equal(after[k], before[k])]
    assert moved and all(is_temporal("sd_unet", k) for k in moved)


def test_sd_recipe_from_a_folder_with_cached_latents(hf_dirs, tmp_path):
    """docs/inflation.md's recipe for a Stable Diffusion folder: inflate it, train its motion modules
    on a folder of captioned clips from latents encoded once (data.cache_latents), export, generate.
    The cached run computes the uncached run's losses; a resume reuses the cache."""
    from vidiff.data.video_io import write_video
    from vidiff.train.latent_cache import INDEX, EncodedClips
    from vidiff.train.loop import train

    clips = tmp_path / "clips"
    for i in range(3):
        # two frames of 16x16: no random start or crop, so every epoch reads what the cache holds
        write_video(torch.rand(3, 2, 16, 16), clips / f"clip{i}.mp4", fps=8)
        (clips / f"clip{i}.txt").write_text(f"a clip number {i}")
    init = inflate(hf_dirs / "sd", tmp_path / "v", num_frames=2)
    assert (
        main(["inflate", str(hf_dirs / "sd"), "-o", str(tmp_path / "v2"), "--num-frames", "2"]) == 0
    )

    def run(out: str, steps: int, cache: bool):
        cfg = load_config(
            "configs/shapes-unet-tiny-inflated.yaml",
            [
                f"model.init={init}",
                f"train.out_dir={tmp_path / out}",
                f"train.steps={steps}",
                "train.batch_size=2",
                "train.ckpt_every=1",
                "train.warmup_steps=1",
                "train.log_every=1",
                "data.name=folder",
                f"data.root={clips}",
                "data.num_frames=2",
                "data.size=16",
                f"data.cache_latents={str(cache).lower()}",
            ],  # fmt: skip
        )
        return train(cfg, progress=False, resume=True)

    cached, plain = run("cached", 2, True), run("plain", 2, False)
    losses = [[r["loss"] for r in res.scalars if "loss" in r] for res in (cached, plain)]
    assert len(losses[0]) == 2 and losses[0] == pytest.approx(losses[1], rel=1e-4, abs=1e-6)
    latents = tmp_path / "cached" / "latents"
    assert len(EncodedClips(latents)) == 3 and EncodedClips(latents)[0]["video"].shape == (
        4,
        2,
        8,
        8,
    )
    assert not (tmp_path / "plain" / "latents").exists()
    stamp = (latents / INDEX).stat().st_mtime_ns
    assert run("cached", 3, True).step == 3 and (latents / INDEX).stat().st_mtime_ns == stamp
    assert main(["export", str(tmp_path / "cached"), "-o", str(tmp_path / "m")]) == 0
    pipe = VideoPipeline.load(tmp_path / "m")
    assert pipe.generate(["a clip number 1"], [0], steps=2).shape == (1, 3, 2, 16, 16)


def test_cache_latents_errors(tmp_path, capsys):
    """A pixel model has no VAE to encode with: one line naming the option, nothing written."""
    out = tmp_path / "r"
    args = ["train", "configs/shapes-unet-tiny.yaml", "data.cache_latents=true",
            f"train.out_dir={out}", "data.num_items=2"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert (
        len(err.splitlines()) == 1
        and "data.cache_latents encodes clips with the model's VAE" in err
    )
    assert not out.exists()
