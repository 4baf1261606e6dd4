"""The one error type the command line turns into a plain message (no traceback)."""


class UsageError(Exception):
    """A user mistake: the message says what was wrong and what is valid."""
