"""Command-line interface: a thin map from subcommands to plain Python functions.

Each command is a function whose signature *is* its interface: ordinary parameters are positional
arguments (optional when they have a default, and then also accepted as ``--name VALUE``),
keyword-only parameters become ``--options``, ``*args`` collects trailing arguments (e.g. dotted
config overrides), ``bool`` options become ``--flag/--no-flag`` and ``list[...]`` options take several
values. The function's docstring is the help: its text describes the command and its Google-style
``Args:`` section gives each option's help line (``--help`` adds the default). Functions are imported
only when their command runs, so ``vidiff --help`` stays fast.

A user error (:class:`vidiff.errors.UserError`, and the ``ValueError`` / ``FileNotFoundError`` the
library raises for bad input) prints one ``vidiff: error: ...`` line and exits with status 2; any other
exception is a bug and keeps its traceback. ``--debug`` (anywhere on the line) or ``VIDIFF_DEBUG=1``
shows the traceback of user errors too.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import re
import sys
import types
import typing
import warnings
from collections.abc import Callable

# command words -> "module:function". Keep this table the single source of truth.
COMMANDS: dict[tuple[str, ...], str] = {
    ("data", "preview"): "vidiff.commands.data:preview",
    ("data", "export"): "vidiff.commands.data:export",
    ("train",): "vidiff.commands.train:train",
    ("export",): "vidiff.commands.train:export",
    ("distill",): "vidiff.commands.distill:distill",
    ("vae", "eval"): "vidiff.commands.vae:vae_eval",
    ("vae", "calibrate"): "vidiff.commands.vae:vae_calibrate",
    ("vae", "cache"): "vidiff.commands.vae:vae_cache",
    ("sample",): "vidiff.commands.sample:generate",  # an alias of generate
    ("generate",): "vidiff.commands.sample:generate",
    ("edit",): "vidiff.commands.edit:edit",
    ("tune",): "vidiff.commands.tune:tune",
    ("eval",): "vidiff.commands.eval:evaluate",
    ("eval-compare",): "vidiff.commands.compare:compare",
    ("eval-long",): "vidiff.commands.eval_long:eval_long",
    ("eval-judges",): "vidiff.commands.judges:eval_judges",
    ("demo",): "vidiff.commands.demo:demo",
    ("serve",): "vidiff.commands.serve:serve",
    ("inflate",): "vidiff.commands.inflate:inflate",
    ("export-motion",): "vidiff.commands.inflate:export_motion",
    ("models",): "vidiff.commands.models:models",
}

# Short aliases that read naturally on the command line.
SHORT = {"out": "-o", "seed": "-s", "num_videos": "-n"}

# What the CLI reports as the user's error in one line; anything else is a bug (traceback).
USER_ERRORS = (ValueError, FileNotFoundError)  # vidiff.errors.UserError is a ValueError

_ARG = re.compile(r"^\*{0,2}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")  # "name: text" or "name (type): text"


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a docstring into its description and the help of each parameter in its ``Args:``
    section (Google style: ``name: text``, continuation lines indented deeper)."""
    lines = (doc or "").splitlines()
    if "Args:" not in (line.strip() for line in lines):
        return "\n".join(lines).strip(), {}
    at = [line.strip() for line in lines].index("Args:")
    described, helps, name = lines[:at], {}, None
    i = at + 1
    while i < len(lines):
        line = lines[i]
        if line.strip() and not line.startswith(" "):  # the next section or paragraph
            break
        match = _ARG.match(line.strip())
        if match and len(line) - len(line.lstrip()) <= 4:
            name = match.group(1)
            helps[name] = match.group(2)
        elif line.strip() and name is not None:
            helps[name] += " " + line.strip()
        i += 1
    described += lines[i:]
    return "\n".join(described).strip(), {k: " ".join(v.split()) for k, v in helps.items()}


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


def _help(text: str, default) -> str:
    """An option's help line: its text, then its default (argparse %-formats help, hence %%)."""
    text = text.replace("%", "%%")
    if default is None or default is inspect.Parameter.empty:
        return text
    shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
    return f"{text} (default: {str(shown).replace('%', '%%')})"


def _add_arguments(parser: argparse.ArgumentParser, fn: Callable) -> None:
    hints = typing.get_type_hints(fn)
    _, helps = parse_docstring(inspect.getdoc(fn))
    for name, p in inspect.signature(fn).parameters.items():
        tp = _unwrap_optional(hints.get(name, str))
        origin = typing.get_origin(tp)
        text = helps.get(name, "")
        if p.kind is p.VAR_POSITIONAL:
            parser.add_argument(name, nargs="*", help=_help(text, None))
            continue
        if p.kind is p.VAR_KEYWORD:
            continue
        if p.kind is p.POSITIONAL_OR_KEYWORD:  # positional; optional when it has a default
            kind = tp if callable(tp) and origin is None else str
            if p.default is p.empty:
                parser.add_argument(name, type=kind, help=_help(text, None))
            else:
                parser.add_argument(
                    name, type=kind, nargs="?", default=p.default, help=_help(text, p.default)
                )
                flag = "--" + name.replace("_", "-")  # the same value, given as an option
                parser.add_argument(
                    flag, type=kind, dest=f"_option_{name}", metavar=name.upper(),
                    help=f"the same as {name.upper()}",
                )  # fmt: skip
            continue
        flag = "--" + name.replace("_", "-")
        names = [flag] + ([SHORT[name]] if name in SHORT else [])
        if tp is bool:
            action = parser.add_argument(
                *names, action=argparse.BooleanOptionalAction, default=p.default
            )
            action.help = _help(text, p.default)  # (some Pythons append the default themselves)
        elif origin in (list, tuple):
            (inner,) = typing.get_args(tp)[:1]
            parser.add_argument(
                *names, nargs="+", type=inner, metavar=name.upper(), default=p.default,
                help=_help(text, p.default),
            )  # fmt: skip
        else:
            parser.add_argument(
                *names, type=tp, metavar=name.upper(), default=p.default,
                help=_help(text, p.default),
            )  # fmt: skip


def _version() -> str:
    from vidiff import __version__

    return __version__


def build_parser(load: bool = True, argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Build the parser. Only the command named in ``argv`` is imported to learn its options
    (``load=False``: none; ``argv=None`` with ``load``: every command, as the help test does)."""
    parser = argparse.ArgumentParser(prog="vidiff", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"vidiff {_version()}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of a user error too (also VIDIFF_DEBUG=1; allowed anywhere)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for words, target in COMMANDS.items():
        sub = subparsers
        for depth, word in enumerate(words[:-1]):
            if word not in groups:
                g = sub.add_parser(word, help=f"{word} commands")
                groups[word] = g.add_subparsers(dest=f"command_{depth + 1}", required=True)
            sub = groups[word]
        wanted = load and (argv is None or list(words) == argv[: len(words)])
        fn = _resolve(target) if wanted else None
        description = parse_docstring(inspect.getdoc(fn))[0] if fn else None
        p = sub.add_parser(
            words[-1],
            help=(description or "").split("\n")[0] or None,
            description=description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if fn is not None:
            _add_arguments(p, fn)
            p.set_defaults(_fn=fn)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings on the command line read like errors: one line, no source excerpt."""
    return f"vidiff: warning: {message}\n"


def _split_debug(argv: list[str]) -> tuple[list[str], bool]:
    """``--debug`` is global: accepted before or after the subcommand (not after ``--``)."""
    end = argv.index("--") if "--" in argv else len(argv)
    head = [a for a in argv[:end] if a != "--debug"]
    return head + argv[end:], len(head) < end


def _call_arguments(fn: Callable, args: argparse.Namespace) -> tuple[list, dict]:
    kwargs, positional = {}, []
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind is p.VAR_POSITIONAL:
            positional.extend(getattr(args, name))
        elif p.kind is p.POSITIONAL_OR_KEYWORD:
            value, option = getattr(args, name), getattr(args, f"_option_{name}", None)
            if option is not None:
                if value is not p.default and value != option:
                    from vidiff.errors import UserError

                    raise UserError(
                        f"{name.upper()} given twice: {value!r} and --{name} {option!r}"
                    )
                value = option
            positional.append(value)
        elif p.kind is not p.VAR_KEYWORD:
            kwargs[name] = getattr(args, name)
    return positional, kwargs


def main(argv: list[str] | None = None) -> int:
    argv, debug = _split_debug(list(sys.argv[1:] if argv is None else argv))
    debug = debug or bool(os.environ.get("VIDIFF_DEBUG"))
    if not debug:  # --debug / VIDIFF_DEBUG=1 keep Python's full warnings
        warnings.formatwarning = _one_line_warning
    args = build_parser(argv=argv).parse_args(argv)
    fn = args._fn
    try:
        positional, kwargs = _call_arguments(fn, args)
        result = fn(*positional, **kwargs)
    except USER_ERRORS as e:
        # Bad input is the user's to fix: one clear line, no traceback (--debug shows it).
        if debug:
            raise
        print(f"vidiff: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
