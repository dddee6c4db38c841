"""The root of every error a user can cause. The CLI prints these as one line.

A library says what went wrong and where, in words that hold whoever called it; it does not
know the ``fog`` command's flags. What the user can change to get past the error is a
structured field, ``remedy``: the name of the knob (a keyword argument of the library call,
e.g. ``max_memory``, ``force``, ``dirs``), and ``subject`` (what the knob applies to, e.g. a
preopen's guest path). The CLI turns the knob into its flag (``--max-memory``, ``--force``).
"""

from __future__ import annotations


class FogError(Exception):
    """A user-facing error: its message is one line that says what and where.

    ``where`` names the input at fault (a file, an app, a knob) when the message is about
    one; ``remedy`` / ``subject``: see the module's docstring.
    """

    def __init__(self, message: str = "", *, where: str | None = None,
                 remedy: str | None = None, subject: str | None = None) -> None:
        super().__init__(message)
        self.where = where
        self.remedy = remedy
        self.subject = subject
