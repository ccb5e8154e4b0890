"""The CLI derives options from function signatures; check that mapping and the error path."""

import subprocess
import sys

import pytest

from vidiff import cli


def _command(
    name: str,
    *overrides: str,
    out: str = "x.mp4",
    steps: list[int] | None = None,
    cfg: float | None = None,
    resume: bool = False,
):
    """A stand-in command: records what it was called with."""
    calls.append(dict(name=name, overrides=overrides, out=out, steps=steps, cfg=cfg, resume=resume))
    if name == "bad":
        raise ValueError("unknown thing 'bad'")
    return 0


def _optional(prompt: str | None = None, *, seed: int = 0):
    calls.append(dict(prompt=prompt, seed=seed))


calls: list[dict] = []
REAL_COMMANDS = dict(cli.COMMANDS)


@pytest.fixture(autouse=True)
def fake_commands(monkeypatch):
    calls.clear()
    monkeypatch.setattr(
        cli, "COMMANDS", {("fake",): f"{__name__}:_command", ("opt",): f"{__name__}:_optional"}
    )


def test_signature_becomes_options():
    assert (
        cli.main(
            [
                "fake",
                "cfg.yaml",
                "a.b=1",
                "c=2",
                "-o",
                "y.gif",
                "--steps",
                "8",
                "4",
                "--cfg",
                "2.5",
                "--resume",
            ]
        )
        == 0
    )
    assert calls == [
        dict(
            name="cfg.yaml",
            overrides=("a.b=1", "c=2"),
            out="y.gif",
            steps=[8, 4],
            cfg=2.5,
            resume=True,
        )
    ]


def test_defaults_and_optional_positional():
    cli.main(["fake", "n"])
    assert calls[-1] == dict(
        name="n", overrides=(), out="x.mp4", steps=None, cfg=None, resume=False
    )
    cli.main(["opt"])
    assert calls[-1] == dict(prompt=None, seed=0)
    cli.main(["opt", "a red circle moving right", "-s", "3"])
    assert calls[-1] == dict(prompt="a red circle moving right", seed=3)


def test_user_error_is_one_line(capsys):
    assert cli.main(["fake", "bad"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "vidiff: error: unknown thing 'bad'"


def test_bad_option_type_is_rejected():
    with pytest.raises(SystemExit):
        cli.main(["fake", "n", "--steps", "many"])


def test_help_lists_every_command():
    out = subprocess.run(
        [sys.executable, "-m", "vidiff.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for words in REAL_COMMANDS:
        assert words[0] in out
