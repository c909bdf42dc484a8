"""Errors rnnlm raises for bad input: each message is one line that says what to fix.

The CLI turns every `RnnlmError` into that line on stderr and exit code 2; library
callers can catch the subclasses to tell data problems from model-file problems.
"""


class RnnlmError(Exception):
    """Base class: a problem the user can fix (bad file, impossible size, ...)."""


class DataError(RnnlmError):
    """A corpus cannot be read or holds nothing usable."""


class ConfigError(RnnlmError, ValueError):
    """A size, rate or option is impossible (hidden 0, vocabulary below 4, ...)."""


class InputError(RnnlmError, ValueError):
    """An argument to a library function is impossible: a word id outside the vocabulary, x and y of different lengths, ..."""


class ModelFileError(RnnlmError):
    """A model file is missing, is not an rnnlm model, is truncated, or has an unknown version."""
