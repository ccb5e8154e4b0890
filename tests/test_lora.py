"""LoRA adapters (peft) on a micro U-Net: identity at init, scale 0 is the base, the adapter folder
round-trips, only the adapter trains (and resumes), export/generate/tune run end to end, bad input
is one clear error."""

from __future__ import annotations

import json

import pytest
import torch

from tests.test_pipeline import PROMPTS, micro_pipeline
from vidiff import cli
from vidiff.adapters import (
    ADAPTER_CONFIG,
    ADAPTER_META,
    ADAPTER_WEIGHTS,
    LoraOptions,
    add_lora,
    default_targets,
    load_adapter,
    lora_config,
    save_adapter,
    set_lora_scale,
)
from vidiff.config import load_config
from vidiff.data.shapes import MovingShapes
from vidiff.pipeline import VideoPipeline

SEEDS = [0, 1]


def _sample(pipe):
    return pipe.generate(PROMPTS[:2], SEEDS, steps=2)


def _adapted(rank=2):
    """A micro pipeline with an adapter whose B is random (a fresh one is exactly zero)."""
    pipe = micro_pipeline()
    add_lora(pipe, lora_config(pipe.net, LoraOptions(rank=rank)))
    with torch.no_grad():
        for name, p in pipe.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    return pipe


def test_targets_are_attention_and_temporal_layers_only():
    names = default_targets(micro_pipeline().net)
    assert any(".temporal.conv" in n for n in names)
    assert any(n.endswith("cross.q") for n in names) and any("spatial.qkv" in n for n in names)
    assert not any(".ff." in n or "time_embed" in n or "res.conv" in n for n in names)


def test_fresh_adapter_changes_nothing_and_alone_is_trainable():
    pipe = micro_pipeline()
    base = _sample(pipe)
    add_lora(pipe, lora_config(pipe.net, LoraOptions(rank=4)))
    trainable = [n for n, p in pipe.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert torch.equal(_sample(pipe), base)  # B = 0: the adapted model is its base


def test_scale_zero_is_the_base_and_scale_one_is_not():
    base = _sample(micro_pipeline())
    pipe = _adapted()
    adapted = _sample(pipe)
    assert (adapted - base).abs().max() > 1e-3
    set_lora_scale(pipe, 0.0)
    assert torch.equal(_sample(pipe), base)
    set_lora_scale(pipe, 1.0)
    assert torch.equal(_sample(pipe), adapted)


def test_adapter_folder_round_trips_in_peft_layout(tmp_path):
    pipe = _adapted()
    expected = _sample(pipe)
    micro_pipeline().save(tmp_path / "base")
    save_adapter(pipe, tmp_path / "adapter", base=tmp_path / "base")
    files = {p.name for p in (tmp_path / "adapter").iterdir()}
    assert files == {ADAPTER_CONFIG, ADAPTER_WEIGHTS, ADAPTER_META}
    config = json.loads((tmp_path / "adapter" / ADAPTER_CONFIG).read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 2
    from safetensors.torch import load_file

    keys = list(load_file(str(tmp_path / "adapter" / ADAPTER_WEIGHTS)))
    assert keys and all(".lora_A.weight" in k or ".lora_B.weight" in k for k in keys)
    loaded = load_adapter(VideoPipeline.load(tmp_path / "base"), tmp_path / "adapter")
    assert torch.equal(_sample(loaded), expected)
    from vidiff.families import load_model  # an adapter folder loads as its base + adapter

    assert torch.equal(_sample(load_model(tmp_path / "adapter")), expected)


def test_adapter_refuses_another_network(tmp_path):
    pipe = _adapted()
    save_adapter(pipe, tmp_path / "adapter", base=tmp_path)
    other = VideoPipeline(
        load_config(
            None,
            [
                "model.net={model_channels: 16, channel_mult: [1, 2], attention_resolutions: [2], head_dim: 8}",
                "model.text={vocab: [a, red], dim: 16, depth: 1, num_heads: 2}",
            ],
        ).pipeline_config()
    )
    with pytest.raises(ValueError, match="trained on another network"):
        load_adapter(other, tmp_path / "adapter")
    with pytest.raises(FileNotFoundError, match="missing vidiff_adapter.json"):
        load_adapter(micro_pipeline(), tmp_path)


def _lora_run(tmp_path, base, *extra):
    return load_config(
        None,
        [
            f"model.init={base}",
            f"train.out_dir={tmp_path / 'run'}",
            "train.trainable=lora",
            "train.lora={rank: 2}",
            "train.steps=4",
            "train.batch_size=2",
            "train.ckpt_every=2",
            "train.warmup_steps=1",
            "train.lr=1.0e-2",
            "train.ema_decay=0.5",
            "data.num_frames=4",
            "data.size=8",
            *extra,
        ],
    )


def test_lora_training_trains_the_adapter_alone_resumes_and_exports(tmp_path):
    from vidiff.train.checkpoint import latest_checkpoint, load_state
    from vidiff.train.loop import train

    micro_pipeline().save(tmp_path / "base")
    before = VideoPipeline.load(tmp_path / "base").state_dict()
    data = (MovingShapes(8, num_frames=4, size=8), None)
    result = train(_lora_run(tmp_path, tmp_path / "base"), datasets=data, progress=False)
    after = result.model.state_dict()
    for key, value in before.items():  # the base weights, now under base_layer, are untouched
        wrapped = key.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        assert torch.equal(after.get(key, after.get(wrapped)), value), key
    lora = {k: v for k, v in after.items() if "lora_B" in k}
    assert lora and any(v.abs().sum() > 0 for v in lora.values())
    state = load_state(latest_checkpoint(tmp_path / "run"))
    assert len(state["optimizer"]["state"]) == sum(".lora_" in k for k in after)

    # resuming from step 2 lands on the same adapter as the straight run
    straight = {k: v.clone() for k, v in after.items()}
    (tmp_path / "run" / "checkpoints" / "ckpt-0000004").rename(tmp_path / "ckpt4")
    resumed = train(
        _lora_run(tmp_path, tmp_path / "base"), resume=True, datasets=data, progress=False
    )
    assert all(torch.equal(resumed.model.state_dict()[k], v) for k, v in straight.items())

    cli.main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "adapter")])
    assert (tmp_path / "adapter" / ADAPTER_WEIGHTS).is_file()
    assert (tmp_path / "adapter" / ADAPTER_WEIGHTS).stat().st_size < (
        tmp_path / "base" / "model.safetensors"
    ).stat().st_size
    for scale in ("0", "1"):
        cli.main(["generate", "--model", str(tmp_path / "base"), "--lora",
                  str(tmp_path / "adapter"), "--lora-scale", scale, PROMPTS[0],
                  "-o", str(tmp_path / f"s{scale}.gif"), "--no-progress"])  # fmt: skip
    cli.main(["generate", "--model", str(tmp_path / "base"), PROMPTS[0],
              "-o", str(tmp_path / "b.gif"), "--no-progress"])  # fmt: skip
    assert (tmp_path / "s0.gif").read_bytes() == (tmp_path / "b.gif").read_bytes()
    assert (tmp_path / "s1.gif").read_bytes() != (tmp_path / "b.gif").read_bytes()


def test_lora_run_errors_are_one_line(tmp_path):
    from vidiff.train.loop import train

    micro_pipeline().save(tmp_path / "base")
    data = (MovingShapes(4, num_frames=4, size=8), None)
    with pytest.raises(ValueError, match="set model.init"):
        cfg = load_config(None, ["train.trainable=lora", f"train.out_dir={tmp_path / 'r'}"])
        train(cfg, datasets=data, progress=False)
    with pytest.raises(ValueError, match="'train.lora.rnak'"):
        train(_lora_run(tmp_path, tmp_path / "base", "train.lora={rnak: 2}"), datasets=data)
    with pytest.raises(ValueError, match="train.lora is set but train.trainable is not lora"):
        train(_lora_run(tmp_path, tmp_path / "base", "train.trainable=all"), datasets=data)
    with pytest.raises(ValueError, match="no 'nothing' layer"):
        cfg = _lora_run(tmp_path, tmp_path / "base", "train.lora={targets: nothing}")
        train(cfg, datasets=data, progress=False)


def test_generate_lora_errors(tmp_path, capsys):
    micro_pipeline().save(tmp_path / "base")
    for args, message in (
        (["--lora", str(tmp_path / "none")], "is not a LoRA adapter folder"),
        (["--lora", str(tmp_path / "base")], "is not a LoRA adapter folder"),
        (["--lora-scale", "-1"], "--lora-scale must be >= 0"),
    ):
        argv = ["generate", "--model", str(tmp_path / "base"), *args, PROMPTS[0],
                "-o", str(tmp_path / "v.gif")]  # fmt: skip
        assert cli.main(argv) == 2
        assert message in capsys.readouterr().err


def test_tune_runs_end_to_end_and_generate_loads_it(tmp_path, capsys):
    from vidiff.data.video_io import write_video

    micro_pipeline().save(tmp_path / "base")
    item = MovingShapes(1, num_frames=4, size=8)[0]
    write_video(item["video"], tmp_path / "clip.gif", fps=8)
    cli.main(["tune", str(tmp_path / "clip.gif"), item["caption"], "-o", str(tmp_path / "tuned"),
              "--model", str(tmp_path / "base"), "--steps", "3", "--rank", "2",
              "--no-progress"])  # fmt: skip
    assert (tmp_path / "tuned" / ADAPTER_WEIGHTS).is_file()
    meta = json.loads((tmp_path / "tuned" / ADAPTER_META).read_text())
    assert meta["base_model"] == str((tmp_path / "base").resolve())
    from vidiff.adapters import SOURCE_VIDEO, tuned_source
    from vidiff.data.video_io import read_video

    clip, structure = tuned_source(tmp_path / "tuned")  # the clip it learnt, as read back
    assert (tmp_path / "tuned" / SOURCE_VIDEO).is_file() and 0 < structure <= 1
    torch.testing.assert_close(clip, read_video(tmp_path / "clip.gif")[0], atol=0, rtol=0)
    capsys.readouterr()
    generate = ["generate", "--model", str(tmp_path / "tuned"), "a blue square moving left",
                "-o", str(tmp_path / "v.png"), "--no-progress", "--steps", "4"]  # fmt: skip
    assert cli.main(generate) == 0 and "tuned on one clip" in capsys.readouterr().err
    # generation starts from the clip: the edit of it with structure guidance, bit for bit
    from vidiff.adapters import load_adapted

    pipe = load_adapted(tmp_path / "tuned")
    want = pipe.edit(clip[None], ["a blue square moving left"], [0], strength=1.0,
                     structure=structure, steps=4)  # fmt: skip
    got = read_video(tmp_path / "v.png")[0]
    assert (got - want[0]).abs().max() <= 1 / 255 + 1e-6  # the filmstrip's 8-bit rounding
    write_video(item["video"][:, :1], tmp_path / "first.png", fps=8)
    assert cli.main([*generate[:-2], "--first-frame", str(tmp_path / "first.png")]) == 2
    assert "one-shot adapter" in capsys.readouterr().err  # the clip fixes the first frame
    argv = ["tune", str(tmp_path / "clip.gif"), "a purple circle moving left",
            "-o", str(tmp_path / "t2"), "--model", str(tmp_path / "base")]  # fmt: skip
    assert cli.main(argv) == 2  # a word the base model does not know
    assert "unknown word 'purple'" in capsys.readouterr().err


def test_a_new_word_starts_as_its_known_word_and_leaves_the_old_ones_alone():
    from vidiff.adapters import add_new_words

    pipe = micro_pipeline()
    encoder = pipe.text_encoder
    old = encoder.encode(PROMPTS)
    add_new_words(pipe, {"purple": "blue"})
    assert encoder.new_words == ["purple"] and encoder.tokenizer.vocab[-1] == "purple"
    assert all(torch.equal(a, b) for a, b in zip(encoder.encode(PROMPTS), old))  # bit for bit
    blue, purple = encoder.encode(["a blue circle moving up", "a purple circle moving up"])[0]
    assert torch.equal(blue, purple)  # the new row starts as "blue"'s
    with pytest.raises(ValueError, match="new words already"):
        add_new_words(pipe, {"violet": "blue"})
    for words, match in [({"red": "blue"}, "in the vocabulary already"),
                         ({"violet": "mauve"}, "'mauve' .* is not in the vocabulary"),
                         ({"Violet": "blue"}, "not one lower-case word")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            add_new_words(micro_pipeline(), words)


def test_new_words_train_with_the_adapter_and_travel_in_its_folder(tmp_path, capsys):
    from vidiff.adapters import NEW_WORDS_WEIGHTS
    from vidiff.train.loop import train

    micro_pipeline().save(tmp_path / "base")
    base = VideoPipeline.load(tmp_path / "base")
    data = MovingShapes(8, num_frames=4, size=8, new_colours={"purple": [0.5, 0, 1]},
                        new_colour_share=0.5)  # fmt: skip
    assert any("purple" in data[i]["caption"] for i in range(8))
    cfg = _lora_run(tmp_path, tmp_path / "base", "train.lora={rank: 2, new_words: {purple: blue}}")
    result = train(cfg, datasets=(data, None), progress=False)
    encoder = result.model.text_encoder
    blue = base.text_encoder.tok_emb.weight[base.text_encoder.tokenizer.stoi["blue"]]
    assert not torch.equal(encoder.new_tok_emb[0], blue)  # the new row trained
    assert torch.equal(encoder.tok_emb.weight, base.text_encoder.tok_emb.weight)  # the old did not
    cli.main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "adapter")])
    meta = json.loads((tmp_path / "adapter" / ADAPTER_META).read_text())
    assert meta["new_words"] == ["purple"] and (tmp_path / "adapter" / NEW_WORDS_WEIGHTS).is_file()
    loaded = load_adapter(VideoPipeline.load(tmp_path / "base"), tmp_path / "adapter")
    assert loaded.text_encoder.tokenizer.stoi["purple"] == len(loaded.text_encoder.tokenizer) - 1
    prompt = "a purple square moving left"
    out = tmp_path / "p.gif"
    argv = [
        "generate",
        "--model",
        str(tmp_path / "adapter"),
        prompt,
        "-o",
        str(out),
        "--no-progress",
    ]
    assert cli.main(argv) == 0 and out.is_file()
    capsys.readouterr()
    argv[2] = str(tmp_path / "base")  # the base model does not know the word
    assert cli.main(argv) == 2 and "unknown word 'purple'" in capsys.readouterr().err


def test_output_preservation_regresses_prior_clips_onto_the_base_model():
    from vidiff.adapters import add_new_words, output_preservation

    pipe = micro_pipeline()
    add_lora(pipe, lora_config(pipe.net, LoraOptions(rank=2)))
    add_new_words(pipe, {"purple": "blue"})
    video = torch.rand(2, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    captions = ["a red circle moving up", "a purple square moving left"]
    plain = pipe.training_loss(video, captions, [0, 1])
    pipe.loss_reference = output_preservation(["purple"])
    kept = pipe.training_loss(video, captions, [0, 1])
    # A fresh adapter (B = 0) is its base: nothing to undo on the prior clip; the new one as before.
    assert kept[0] == 0 and kept[1] == plain[1] and plain[0] > 0
    with torch.no_grad():
        for name, p in pipe.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    before = _sample(pipe)
    kept = pipe.training_loss(video, captions, [0, 1])
    assert kept[0] > 0  # the adapter's change to the base's output on the old prompt
    kept[0].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for n, p in pipe.named_parameters() if "lora_B" in n)  # fmt: skip
    assert torch.equal(_sample(pipe), before)  # the reference left the adapter switched on
    assert pipe.loss_reference(pipe, ["a purple circle moving up"]) is None  # no prior clip


def test_preserve_needs_new_words(tmp_path):
    from vidiff.train.loop import train

    micro_pipeline().save(tmp_path / "base")
    with pytest.raises(ValueError, match="set train.lora.new_words"):
        cfg = _lora_run(tmp_path, tmp_path / "base", "train.lora={rank: 2, preserve: true}")
        train(cfg, datasets=(MovingShapes(4, num_frames=4, size=8), None), progress=False)
