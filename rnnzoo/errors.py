"""The one error type for a user's mistake, in Python and on the command line.

`InputError` is raised for any bad input (an unknown example or setting, an unreadable image, a word the
model does not know, a checkpoint of another shape ...). Its message says what was wrong and what is
valid; the command line prints it as `rnnzoo: error: <message>` and exits with status 2, never with a
traceback. It is exported as `rnnzoo.InputError`. `DataError` is the same for a dataset that is missing,
corrupt or cannot be fetched (`rnnzoo.DataError`).
"""


class InputError(ValueError):
    """A user mistake: the message says what was wrong and what is valid."""


class TooLarge(InputError):
    """An input over a size limit (a picture or movie of too many pixels, a web request over its limits); the
    web app answers it with status 413."""


class DataError(Exception):
    """A dataset is missing, corrupt or cannot be fetched; the message says what is wrong and what to do."""
