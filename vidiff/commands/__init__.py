"""The command layer: every ``vidiff`` subcommand is a function here (``vidiff/cli.py`` maps words to them).

A command parses and validates its options and output paths up front, calls the library, and prints
what it wrote; the library modules never import from here.

* :mod:`~vidiff.commands.sample` -- ``vidiff generate`` / ``vidiff sample``
* :mod:`~vidiff.commands.edit` -- ``vidiff edit``
* :mod:`~vidiff.commands.train` -- ``vidiff train``, ``vidiff export``
* :mod:`~vidiff.commands.distill` -- ``vidiff distill``
* :mod:`~vidiff.commands.eval` -- ``vidiff eval``; :mod:`~vidiff.commands.compare` -- ``vidiff eval-compare``
* :mod:`~vidiff.commands.vae` -- ``vidiff vae eval|calibrate|cache``
* :mod:`~vidiff.commands.data` -- ``vidiff data preview|export``
* :mod:`~vidiff.commands.demo` -- ``vidiff demo``; :mod:`~vidiff.commands.judges` -- ``vidiff eval-judges``
* :mod:`~vidiff.commands.inflate` -- ``vidiff inflate``, ``vidiff export-motion``
* :mod:`~vidiff.commands.checks` -- the option checks they share
"""
