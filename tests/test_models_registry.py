"""The shipped-model registry: names resolve to folders everywhere a model folder is accepted, and
`vidiff models` lists what ships with its kind, shape, steps, size and recorded figures."""

from __future__ import annotations

import json

import pytest

from tests.test_pipeline import micro_pipeline
from tests.test_vae import micro_vae
from vidiff import cli
from vidiff.commands import eval as eval_commands
from vidiff.config import load_config
from vidiff.errors import UserError
from vidiff.registry import (
    describe_model,
    list_models,
    model_kind,
    resolve_config_models,
    resolve_model,
    shipped_models,
)
from vidiff.runtime import DEFAULT_MODEL


@pytest.fixture
def assets(tmp_path):
    """A private assets folder holding a micro pixel U-Net and a micro VAE."""
    root = tmp_path / "assets"
    micro_pipeline().save(root / "micro-unet")
    micro_vae().save(root / "vae-micro")
    (root / "not-a-model").mkdir()
    return root


def test_resolve_by_name_alias_and_path(assets, tmp_path):
    assert resolve_model("default-model") == DEFAULT_MODEL
    assert resolve_model("default") == DEFAULT_MODEL
    assert resolve_model("vae-micro", assets=assets) == assets / "vae-micro"
    assert list(shipped_models(assets)) == ["micro-unet", "vae-micro"]
    # an existing folder wins over a shipped name of the same spelling
    (tmp_path / "work" / "vae-micro").mkdir(parents=True)
    assert (
        resolve_model(tmp_path / "work" / "vae-micro", assets=assets)
        == tmp_path / "work" / "vae-micro"
    )


def test_unknown_name_lists_the_shipped_names(assets):
    with pytest.raises(UserError, match=r"--model nope: .*shipped: micro-unet, vae-micro"):
        resolve_model("nope", assets=assets)
    # a model a recipe makes names the recipe
    with pytest.raises(UserError, match=r"model\.vae shapes-vqvae: .*not installed.*make vqvae"):
        resolve_model("shapes-vqvae", "model.vae", assets=assets)


def test_describe_kinds_shapes_and_sizes(assets):
    unet, vae = list_models(assets)
    assert (unet.name, unet.kind, unet.frames, unet.height, unet.steps) == (
        "micro-unet", "pixel U-Net", 4, 8, 3
    )  # fmt: skip
    assert unet.parameters == sum(p.numel() for p in micro_pipeline().state_dict().values())
    assert unet.bytes == (assets / "micro-unet" / "model.safetensors").stat().st_size
    assert (vae.kind, vae.frames, vae.steps) == ("video VAE", None, None)
    assert model_kind({"model": {"arch": "dit", "vae_config": {}}}) == "latent DiT"
    assert model_kind({"model": {"arch": "dit"}}) == "pixel DiT"
    assert model_kind({"model": {"arch": "unet3d", "vae": "x"}}) == "latent U-Net"


def test_models_command_lists_the_default_model(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("default-model"))
    figures = json.loads((DEFAULT_MODEL / "eval.json").read_text())["rows"][0]
    for text in (
        "pixel U-Net",
        "16x32x32",
        "8 ddim",
        "MB",
        f"adherence {figures['adherence']:.1%}",
    ):
        assert text in row, (text, row)
    assert "default = default-model" in out


def test_models_json(capsys):
    assert cli.main(["models", "--json"]) == 0
    found = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    m = found["default-model"]
    assert (m["kind"], m["frames"], m["height"], m["width"]) == ("pixel U-Net", 16, 32, 32)
    assert m["figures"] == json.loads((DEFAULT_MODEL / "eval.json").read_text())
    assert m["parameters"] == describe_model(DEFAULT_MODEL).parameters > 0
    assert cli.main(["models", "default", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "default-model"
    assert cli.main(["models", "nope"]) == 2
    assert "no shipped model" in capsys.readouterr().err


def test_generate_with_a_shipped_name(tmp_path):
    out = tmp_path / "v.gif"
    args = ["generate", "a red circle moving right", "--model", "default-model", "--steps", "1"]
    assert cli.main([*args, "-o", str(out), "--no-progress"]) == 0
    assert out.is_file()


def test_eval_with_a_shipped_name_loads_its_folder(monkeypatch, tmp_path):
    loaded = []

    def load(model, device):
        loaded.append(model)
        raise UserError("stop after the load")

    monkeypatch.setattr(eval_commands, "load_pipeline", load)
    assert cli.main(["eval", "--model", "default-model", "--out", str(tmp_path / "e")]) == 2
    assert loaded == [str(DEFAULT_MODEL)]


def test_config_names_a_shipped_vae(assets):
    cfg = load_config(None, ["model.arch=dit", "model.vae=vae-micro"])
    assert resolve_config_models(cfg, assets).model.vae == str(assets / "vae-micro")
    cfg = load_config(None, ["model.arch=dit", "model.vae=shapes-vqvae"])
    with pytest.raises(UserError, match="make vqvae"):
        resolve_config_models(cfg, assets)


def test_an_installed_vqvae_is_an_autoencoder_not_a_generator(assets):
    """`make vqvae` installs shapes-vqvae into the assets: `vidiff models` lists it as a VQ-VAE and
    the serve catalogue leaves it out, as it does the video VAE (it generates nothing)."""
    from vidiff.app.catalog import find_models
    from vidiff.models.vqvae import VQVAE, vqvae_config

    VQVAE(vqvae_config("vqvae-test")).save(assets / "shapes-vqvae")
    entry = {e.name: e for e in list_models(assets)}["shapes-vqvae"]
    assert (entry.kind, entry.frames, entry.temporal_compression) == ("VQ-VAE", None, 4)
    assert list(find_models(assets=assets)) == ["micro-unet"]
