"""Typed configs: strict keys, dotted overrides, type checks, YAML round trip, shipped recipes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from vidiff.config import Config, from_dict, load_config, load_pipeline_config, to_dict

RECIPES = ("shapes-unet-tiny.yaml", "shapes-unet-small.yaml", "folder-unet-small.yaml")
CONFIGS = [Path(__file__).resolve().parents[1] / "configs" / name for name in RECIPES]


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_unknown_key_is_an_error_that_names_it(tmp_path):
    path = _write(tmp_path, {"train": {"stepz": 10}})
    with pytest.raises(ValueError, match=r"'train\.stepz'") as info:
        load_config(path)
    assert "steps" in str(info.value)  # the valid keys are listed next to the culprit


def test_unknown_section_and_unknown_override_name_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"'trian'"):
        load_config(_write(tmp_path, {"trian": {"steps": 1}}))
    with pytest.raises(ValueError, match=r"'model\.presett'"):
        load_config(None, ["model.presett=unet-small"])


def test_overrides_apply_on_top_of_the_file(tmp_path):
    path = _write(tmp_path, {"train": {"steps": 10, "lr": 1e-3}, "data": {"size": 16}})
    cfg = load_config(
        path,
        ["train.steps=2000", "model.net.channels=[8, 16]", "data.root=/x", "train.betas=[0.8,0.9]"],
    )
    assert cfg.train.steps == 2000
    assert cfg.train.lr == pytest.approx(1e-3)  # untouched file value survives
    assert cfg.data.size == 16
    assert cfg.data.root == "/x"
    assert cfg.model.net == {"channels": [8, 16]}
    assert cfg.train.betas == (0.8, 0.9)
    assert cfg.diffusion.parameterization == Config().diffusion.parameterization  # default


def test_type_errors_name_the_key():
    with pytest.raises(ValueError, match=r"train\.steps.*int"):
        load_config(None, ["train.steps=many"])
    with pytest.raises(ValueError, match=r"train\.steps"):
        load_config(None, ["train.steps=true"])  # a bool is not an int
    with pytest.raises(ValueError, match=r"data\.options.*mapping"):
        load_config(None, ["data.options=3"])
    with pytest.raises(ValueError, match="section.key=value"):
        load_config(None, ["train.steps"])
    cfg = load_config(None, ["train.lr=1"])  # an int where a float is expected is unambiguous
    assert isinstance(cfg.train.lr, float)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_yaml_round_trip(tmp_path):
    cfg = load_config(
        None, ["train.steps=7", "model.text.vocab=[a, red, circle]", "data.image_ratio=0.25"]
    )
    text = yaml.safe_dump(to_dict(cfg))
    again = from_dict(Config, yaml.safe_load(text))
    assert again == cfg
    assert to_dict(again) == to_dict(cfg)


def test_pipeline_config_round_trip(tmp_path):
    import json

    cfg = load_config(None, ["data.num_frames=8", "data.size=16", "data.fps=4"])
    pc = cfg.pipeline_config()
    assert (pc.video.num_frames, pc.video.size, pc.video.fps) == (8, 16, 4)
    (tmp_path / "config.json").write_text(json.dumps(to_dict(pc)))
    assert load_pipeline_config(tmp_path / "config.json") == pc


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_load(path):
    cfg = load_config(path)  # also: the file exists and every key in it is known
    assert cfg.train.batch_size % cfg.train.grad_accum == 0
    assert cfg.train.out_dir.startswith("runs/")


def test_every_strict_check_names_the_culprit_and_the_valid_names():
    """Config keys, model overrides, dataset, schedule and sampler options share one check."""
    from vidiff.config import check_fields
    from vidiff.data import build_dataset
    from vidiff.diffusion.schedules import get_sigmas
    from vidiff.models import build_config
    from vidiff.sampling import sample

    with pytest.raises(ValueError, match=r"^cfg: unknown key\(s\) 'b', 'c'; valid: a$"):
        check_fields({"a": 1, "c": 2, "b": 3}, ["a"], "cfg")
    check_fields({"a": 1}, ["a", "z"], "cfg")  # known names pass
    calls = [
        (
            lambda: build_config("unet3d", "unet-tiny", chanel_mult=(1,)),
            "chanel_mult",
            "channel_mult",
        ),
        (lambda: build_dataset("shapes", num_item=3), "num_item", "num_items"),
        (lambda: get_sigmas("flow", 4, shfit=3.0), "shfit", "shift"),
        (
            lambda: sample(
                lambda x, s: x, torch.ones(1, 2), torch.tensor([1.0, 0.0]), "heun", eta=1
            ),
            "eta",
            "noise",
        ),
    ]
    for call, culprit, valid in calls:
        with pytest.raises(ValueError, match=rf"unknown \w+\(s\) '{culprit}'; valid: .*{valid}"):
            call()
