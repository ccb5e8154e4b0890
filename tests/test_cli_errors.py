"""Every user error is one `vidiff: error:` line with status 2, found before any work and leaving
nothing behind; a bug keeps its traceback; `--debug` shows the traceback of a user error too."""

import os
import subprocess
import sys

import pytest
import torch

from tests.test_pipeline import micro_pipeline
from vidiff import cli
from vidiff.data.video_io import read_video
from vidiff.errors import UserError
from vidiff.pipeline import VideoPipeline


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("model")
    micro_pipeline().save(path)
    return path


@pytest.fixture
def no_model_load(monkeypatch):
    """Loading a model is work: the checks below must fail before it."""

    def load(*args, **kwargs):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr(VideoPipeline, "load", load)


def one_line_error(capsys, argv: list[str]) -> str:
    """Run the CLI; it must answer one `vidiff: error:` line on stderr and status 2."""
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidiff: error: "), err
    assert "Traceback" not in err
    return lines[0]


def generate(model_dir, out, *extra: str) -> list[str]:
    return ["generate", "a red circle moving right", "--model", str(model_dir), "-o", str(out),
            "--steps", "2", *extra]  # fmt: skip


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "tpu"])
def test_misspelled_device(capsys, tmp_path, model_dir, no_model_load, device):
    line = one_line_error(capsys, generate(model_dir, tmp_path / "v.mp4", "--device", device))
    assert f"--device {device!r}" in line
    assert not (tmp_path / "v.mp4").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_unavailable_device(capsys, tmp_path, model_dir, no_model_load):
    line = one_line_error(capsys, generate(model_dir, tmp_path / "v.mp4", "--device", "cuda"))
    assert "--device cuda" in line and "no CUDA GPU" in line


@pytest.mark.parametrize("damage", ["random", "truncated", "empty"])
def test_damaged_weights(capsys, tmp_path, model_dir, damage):
    bad = tmp_path / "model"
    bad.mkdir()
    (bad / "config.json").write_bytes((model_dir / "config.json").read_bytes())
    weights = (model_dir / "model.safetensors").read_bytes()
    data = {"random": os.urandom(4096), "truncated": weights[: len(weights) // 2], "empty": b""}
    (bad / "model.safetensors").write_bytes(data[damage])
    line = one_line_error(capsys, generate(bad, tmp_path / "v.mp4"))
    assert str(bad / "model.safetensors") in line
    assert not (tmp_path / "v.mp4").exists()


@pytest.mark.parametrize("text", ["", "   \n", "{not json", "[1, 2"])
def test_config_json_not_json(capsys, tmp_path, model_dir, text):
    bad = tmp_path / "model"
    bad.mkdir()
    (bad / "config.json").write_text(text)
    (bad / "model.safetensors").write_bytes((model_dir / "model.safetensors").read_bytes())
    line = one_line_error(capsys, generate(bad, tmp_path / "v.mp4"))
    assert str(bad / "config.json") in line and "JSON" in line


def test_malformed_yaml_names_the_file(capsys, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  steps: [1, 2\n  lr: 1e-4\n")
    line = one_line_error(capsys, ["train", str(config)])
    assert str(config) in line and "<unicode string>" not in line and "line" in line


@pytest.mark.parametrize("size", ["0", "-1"])
def test_non_positive_batch_size(capsys, tmp_path, model_dir, no_model_load, size):
    line = one_line_error(capsys, generate(model_dir, tmp_path / "v.mp4", "--batch-size", size))
    assert f"--batch-size must be >= 1, got {size}" in line


@pytest.mark.parametrize("seed", [-1, 2**63, 2**63 - 1])
def test_seed_out_of_range(capsys, tmp_path, model_dir, no_model_load, seed):
    argv = generate(model_dir, tmp_path / "v.mp4", "--seed", str(seed), "-n", "2")
    assert "--seed must be in [0, 2**63)" in one_line_error(capsys, argv)
    assert not (tmp_path / "v.mp4").exists()


@pytest.mark.parametrize("prompt", ["", "  "])
def test_empty_prompt(capsys, tmp_path, model_dir, no_model_load, prompt):
    argv = ["generate", prompt, "--model", str(model_dir), "-o", str(tmp_path / "v.mp4")]
    assert "the prompt is empty" in one_line_error(capsys, argv)
    assert not (tmp_path / "v.mp4").exists()


def test_every_unknown_word_is_named(capsys, tmp_path, model_dir):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a purple blob moving right\na red circle moving sideways\n")
    argv = ["generate", "--prompts", str(prompts), "--model", str(model_dir),
            "--out-dir", str(tmp_path / "out")]  # fmt: skip
    line = one_line_error(capsys, argv)
    assert "'purple', 'blob', 'sideways'" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["v.txt", "v"])
def test_bad_output_suffix_fails_before_sampling(capsys, tmp_path, model_dir, no_model_load, name):
    line = one_line_error(capsys, generate(model_dir, tmp_path / name))
    assert "--out" in line and "suffix" in line
    assert not (tmp_path / name).exists()


def test_output_that_is_a_folder_fails_before_sampling(capsys, tmp_path, model_dir, no_model_load):
    (tmp_path / "x.mp4").mkdir()
    line = one_line_error(capsys, generate(model_dir, tmp_path / "x.mp4"))
    assert "is a folder" in line
    assert list((tmp_path / "x.mp4").iterdir()) == []


def test_output_under_a_file_fails_before_sampling(capsys, tmp_path, model_dir, no_model_load):
    (tmp_path / "file").write_text("")
    line = one_line_error(capsys, generate(model_dir, tmp_path / "file" / "v.mp4"))
    assert "is a file, not a folder" in line


def test_argparse_type_error_stays_one_line(capsys, model_dir):
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main(["generate", "x", "--seed", "many"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "error:" in line] == [
        "vidiff generate: error: argument --seed/-s: invalid int value: 'many'"
    ]


def test_debug_shows_the_traceback(tmp_path, model_dir, no_model_load, monkeypatch):
    argv = ["generate", "", "--model", str(model_dir), "-o", str(tmp_path / "v.mp4")]
    with pytest.raises(UserError, match="empty"):
        cli.main(["--debug", *argv])
    with pytest.raises(UserError, match="empty"):
        cli.main([*argv, "--debug"])
    monkeypatch.setenv("VIDIFF_DEBUG", "1")
    with pytest.raises(UserError, match="empty"):
        cli.main(argv)


def test_debug_traceback_from_the_command_line(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "vidiff.cli",
            "generate",
            "",
            "--debug",
            "-o",
            str(tmp_path / "v.mp4"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert "Traceback" in run.stderr and "UserError: the prompt is empty" in run.stderr


def test_a_bug_keeps_its_traceback(tmp_path, model_dir, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in vidiff")

    monkeypatch.setattr(VideoPipeline, "generate", broken)
    with pytest.raises(RuntimeError, match="a bug in vidiff"):
        cli.main(generate(model_dir, tmp_path / "v.mp4"))


def test_generate_streams_each_batch_to_disk(capsys, tmp_path, model_dir, monkeypatch):
    """Files appear as their batch is done, and a video does not depend on the batch it was in."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle moving right\na blue square moving up\n")
    out = tmp_path / "out"
    seen = []
    original = VideoPipeline.generate

    def spy(self, *args, **kwargs):
        seen.append(len(list(out.glob("*.png"))))  # files on disk when this batch starts
        return original(self, *args, **kwargs)

    monkeypatch.setattr(VideoPipeline, "generate", spy)
    argv = ["generate", "--prompts", str(prompts), "--model", str(model_dir), "-n", "2",
            "--steps", "2", "-o", "v.png"]  # fmt: skip
    assert cli.main([*argv, "--out-dir", str(out), "--batch-size", "1"]) == 0
    assert seen == [0, 1, 2, 3]
    assert "4/4" in capsys.readouterr().err  # the progress bar
    assert (
        cli.main([*argv, "--out-dir", str(tmp_path / "b"), "--batch-size", "3", "--no-progress"])
        == 0
    )
    assert capsys.readouterr().err == ""
    for path in sorted(out.glob("*.png")):
        a, b = read_video(path)[0], read_video(tmp_path / "b" / path.name)[0]
        assert (a - b).abs().max() <= 1 / 255
    assert (out / "manifest.jsonl").read_text() == (tmp_path / "b" / "manifest.jsonl").read_text()


def test_sample_alias_takes_prompt_as_an_option(capsys, tmp_path, model_dir):
    out = tmp_path / "v.gif"
    argv = ["sample", "--model", str(model_dir), "--prompt", "a red circle moving right",
            "-o", str(out), "--steps", "2"]  # fmt: skip
    assert cli.main(argv) == 0 and out.is_file()
    line = one_line_error(capsys, [*argv[:1], "a blue square moving up", *argv[1:]])
    assert "PROMPT given twice" in line


def test_malformed_override_is_one_line(capsys, tmp_path):
    line = one_line_error(capsys, ["train", "configs/shapes-unet-tiny.yaml", "train.steps=[1"])
    assert "override is not valid YAML" in line


def test_other_commands_check_their_output_first(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    line = one_line_error(capsys, ["data", "preview", "shapes", "-o", str(tmp_path / "p.txt")])
    assert "--out" in line and "suffix" in line
    line = one_line_error(capsys, ["data", "export", "shapes", "-o", str(tmp_path / "file" / "x")])
    assert "is a file, not a folder" in line
    line = one_line_error(capsys, ["demo", "-o", str(tmp_path / "file"), "--seed", "-1"])
    assert "is a file, not a folder" in line


def test_eval_and_distill_check_options_before_loading(capsys, tmp_path, model_dir, no_model_load):
    out = tmp_path / "e"
    line = one_line_error(
        capsys, ["eval", "--model", str(model_dir), "--device", "gpu", "-o", str(out)]
    )
    assert "--device 'gpu'" in line
    line = one_line_error(
        capsys, ["eval", "--model", str(model_dir), "--seed", "-3", "-o", str(out)]
    )
    assert "--seed must be in [0, 2**63)" in line
    assert not out.exists()
    line = one_line_error(capsys, ["distill", str(model_dir), "--batch-size", "0", "-o", str(out)])
    assert "--batch-size must be >= 1" in line
    assert not out.exists()
