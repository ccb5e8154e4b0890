"""Every recipe in configs/ builds from a clean clone -- its dataset and its model, without training
-- or fails at once with one line naming what is missing and how to make it."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidiff import cli
from vidiff.config import load_config
from vidiff.errors import UserError
from vidiff.registry import ASSETS, resolve_config_models
from vidiff.train.data import build_train_datasets
from vidiff.train.finetune import resolve_init

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_builds_or_names_what_is_missing(path):
    from vidiff.train.objectives import build_objective

    cfg = load_config(path, ["data.num_items=4"])
    try:
        cfg = resolve_config_models(cfg)
    except UserError as e:  # a model the recipe names is not installed: the recipe that makes it
        missing = cfg.model.vae if str(e).startswith("model.vae") else cfg.model.init
        assert f"the model {missing!r} is not installed" in str(e), str(e)
        assert "make it with: make " in str(e) and "\n" not in str(e)
        return
    cfg = resolve_init(cfg)  # model.init: the model and diffusion settings of that folder
    if cfg.data.name in ("folder", "images") and cfg.data.root is None:  # the user's own clips
        with pytest.raises(ValueError, match="needs data.root"):
            build_train_datasets(cfg.data, cfg.train.seed)
    else:
        videos, _ = build_train_datasets(cfg.data, cfg.train.seed)
        assert len(videos) == 4
    if cfg.model.text_encoder == "builtin" and not cfg.model.text.get("vocab"):
        cfg.model.text = {**cfg.model.text, "vocab": ["a", "red", "circle"]}  # as the trainer does
    assert sum(p.numel() for p in build_objective(cfg).parameters()) > 0


def test_inflated_recipe_fails_first_naming_the_image_model(capsys, tmp_path):
    if (ASSETS / "shapes-image-video").is_dir():
        pytest.skip("shapes-image-video is installed here (make image-model)")
    code = cli.main(
        ["train", "configs/shapes-unet-tiny-inflated.yaml", f"train.out_dir={tmp_path}/r"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "model.init shapes-image-video" in err and "make image-model" in err
    assert not (tmp_path / "r").exists()


def test_latent_recipe_trains_from_a_clean_clone_on_the_shipped_vae(tmp_path):
    # configs/shapes-dit-tiny.yaml names the shipped VAE `vae-shapes`: nothing to make first
    from vidiff.pipeline import VideoPipeline

    dit = next(p for p in CONFIGS if p.name == "shapes-dit-tiny.yaml")
    run = tmp_path / "run"
    tiny = ["train.steps=2", "train.batch_size=2", "train.warmup_steps=1", "train.ckpt_every=2"]
    assert cli.main(["train", str(dit), *tiny, f"train.out_dir={run}"]) == 0
    assert cli.main(["export", str(run), "-o", str(tmp_path / "model")]) == 0
    pipe = VideoPipeline.load(tmp_path / "model")
    assert pipe.vae is not None and pipe.vae.latent_channels == 8
