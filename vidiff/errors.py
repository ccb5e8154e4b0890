"""The user's errors: input a person must fix, told in one line that names the culprit.

:class:`UserError` subclasses ``ValueError`` so that code catching ``ValueError`` keeps working. The CLI
(:func:`vidiff.cli.main`) prints a user error as one ``vidiff: error: ...`` line and exits with status
2; anything else is a bug and keeps its traceback. ``--debug`` (or ``VIDIFF_DEBUG=1``) shows the
traceback of a user error too.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input (an option, a file, a prompt): the message says what is wrong and where."""
