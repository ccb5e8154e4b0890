"""Every option of every command explains itself in `--help`, `vidiff --version` answers, and the
library never imports the command layer."""

import argparse
import inspect

import pytest

import vidiff
from vidiff import cli


@pytest.mark.parametrize("words", list(cli.COMMANDS), ids=" ".join)
def test_every_option_of_every_command_has_help(words):
    fn = cli._resolve(cli.COMMANDS[words])
    description, helps = cli.parse_docstring(inspect.getdoc(fn))
    assert description, f"{' '.join(words)}: no description"
    params = [
        name for name, p in inspect.signature(fn).parameters.items() if p.kind is not p.VAR_KEYWORD
    ]
    missing = [name for name in params if not helps.get(name, "").strip()]
    assert not missing, (
        f"`vidiff {' '.join(words)}` documents no help for {missing} (Args: section)"
    )
    assert set(helps) <= set(params), f"Args: names unknown parameters {set(helps) - set(params)}"
    parser = argparse.ArgumentParser()
    cli._add_arguments(parser, fn)
    for action in parser._actions:
        assert action.help and action.help.strip(), action.dest


def test_generate_help_shows_text_and_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["generate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "videos sampled at once; each batch is written as soon as it is done. (default: 16)" in out
    )
    assert "default: None" not in out
    assert "--no-progress" in out and "Args:" not in out


def test_docstring_args_parsing():
    doc = """Do it.

    More text.

    Args:
        name: the first
            continued.
        *rest: the others.
        flag (bool): a flag.

    Example: x
    """
    description, helps = cli.parse_docstring(inspect.cleandoc(doc))
    assert helps == {"name": "the first continued.", "rest": "the others.", "flag": "a flag."}
    assert description == "Do it.\n\nMore text.\n\nExample: x"


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"vidiff {vidiff.__version__}"


def test_library_never_imports_the_commands():
    """Commands are the top layer: only vidiff/commands/ and vidiff/cli.py may import them."""
    import ast
    from pathlib import Path

    root = Path(vidiff.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path.parent.name == "commands" or path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [f"{path.relative_to(root)}: {n}" for n in names if "commands" in n]
    assert not offenders
