"""Errors that carry a one-line, actionable message for the user."""

from __future__ import annotations


class UserError(Exception):
    """An input problem the user can fix (bad path, wrong layout, unreadable file).

    The CLI prints it as one line naming the file and what to do, never as a traceback.
    """
