"""The functions behind the command-line subcommands (``vidiff/cli.py`` maps words to them)."""
