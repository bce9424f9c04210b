"""Errors that reach the user as one clear line (exit status 2), never as a traceback."""


class RnnvanishError(Exception):
    """Bad input from the user: a flag value, a file, a checkpoint. The CLI prints it and exits 2."""


class NonFiniteError(RnnvanishError):
    """A loss or gradient became NaN or infinite; the message carries the diagnosis."""
