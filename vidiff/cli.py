"""Command-line interface: a thin map from subcommands to plain Python functions.

Each command is a function whose signature *is* its interface: ordinary parameters are positional
arguments (optional when they have a default), keyword-only parameters become ``--options``
(``--help`` shows their defaults),
``*args`` collects trailing arguments (e.g. dotted config overrides), ``bool`` options become
``--flag/--no-flag`` and ``list[...]`` options take several values. The function's docstring is the help.
Functions are imported only when their command runs, so ``vidiff --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
import types
import typing
from collections.abc import Callable

# command words -> "module:function". Keep this table the single source of truth.
COMMANDS: dict[tuple[str, ...], str] = {
    ("data", "preview"): "vidiff.data.commands:preview",
    ("data", "export"): "vidiff.data.commands:export",
    ("train",): "vidiff.train.commands:train",
    ("export",): "vidiff.train.commands:export",
    ("distill",): "vidiff.distill.commands:distill",
    ("vae", "eval"): "vidiff.models.commands:vae_eval",
    ("vae", "calibrate"): "vidiff.models.commands:vae_calibrate",
    ("vae", "cache"): "vidiff.models.commands:vae_cache",
    ("sample",): "vidiff.sampling.commands:sample",
    ("generate",): "vidiff.sampling.commands:generate",
    ("edit",): "vidiff.sampling.edit_command:edit",
    ("eval",): "vidiff.eval.commands:evaluate",
    ("eval-compare",): "vidiff.eval.compare:compare",
    ("eval-judges",): "vidiff.eval.judges:train_judges",
    ("demo",): "vidiff.demo:demo",
    ("serve",): "vidiff.app.commands:serve",
}

# Short aliases that read naturally on the command line.
SHORT = {"out": "-o", "seed": "-s", "num_videos": "-n"}


def _resolve(target: str) -> Callable:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _unwrap_optional(tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _add_arguments(parser: argparse.ArgumentParser, fn: Callable) -> None:
    hints = typing.get_type_hints(fn)
    for name, p in inspect.signature(fn).parameters.items():
        tp = _unwrap_optional(hints.get(name, str))
        origin = typing.get_origin(tp)
        if p.kind is p.VAR_POSITIONAL:
            helptext = "dotted overrides, e.g. train.steps=2000" if name == "overrides" else None
            parser.add_argument(name, nargs="*", help=helptext)
            continue
        if p.kind is p.VAR_KEYWORD:
            continue
        if p.kind is p.POSITIONAL_OR_KEYWORD:  # positional; optional when it has a default
            kind = tp if callable(tp) and origin is None else str
            if p.default is p.empty:
                parser.add_argument(name, type=kind)
            else:
                parser.add_argument(name, type=kind, nargs="?", default=p.default)
            continue
        flag = "--" + name.replace("_", "-")
        names = [flag] + ([SHORT[name]] if name in SHORT else [])
        shown = {"default": p.default, "help": "default: %(default)s"}
        if tp is bool:
            parser.add_argument(*names, action=argparse.BooleanOptionalAction, **shown)
        elif origin in (list, tuple):
            (inner,) = typing.get_args(tp)[:1]
            parser.add_argument(*names, nargs="+", type=inner, metavar=name.upper(), **shown)
        else:
            parser.add_argument(*names, type=tp, metavar=name.upper(), **shown)


def build_parser(load: bool = True, argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Build the parser. Only the command named in ``argv`` is imported to learn its options."""
    parser = argparse.ArgumentParser(prog="vidiff", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    argv = argv or []
    for words, target in COMMANDS.items():
        sub = subparsers
        for depth, word in enumerate(words[:-1]):
            if word not in groups:
                g = sub.add_parser(word, help=f"{word} commands")
                groups[word] = g.add_subparsers(dest=f"command_{depth + 1}", required=True)
            sub = groups[word]
        wanted = load and list(words) == argv[: len(words)]
        fn = _resolve(target) if wanted else None
        doc = inspect.getdoc(fn) if fn else None
        p = sub.add_parser(
            words[-1],
            help=(doc or "").split("\n")[0] or None,
            description=doc,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        if fn is not None:
            _add_arguments(p, fn)
            p.set_defaults(_fn=fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv=argv).parse_args(argv)
    fn = args._fn
    kwargs, positional = {}, []
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind is p.VAR_POSITIONAL:
            positional.extend(getattr(args, name))
        elif p.kind is p.POSITIONAL_OR_KEYWORD:
            positional.append(getattr(args, name))
        elif p.kind is not p.VAR_KEYWORD:
            kwargs[name] = getattr(args, name)
    try:
        result = fn(*positional, **kwargs)
    except (ValueError, FileNotFoundError) as e:
        # Bad input is the user's to fix: one clear line, no traceback (VIDIFF_DEBUG=1 shows it).
        if os.environ.get("VIDIFF_DEBUG"):
            raise
        print(f"vidiff: error: {e}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
