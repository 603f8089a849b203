"""The errors of the label generator."""

from tapefs.errors import InvalidInput, TapefsError


class LabelError(TapefsError):
    """A label sheet could not be made or read."""


class LabelInputError(InvalidInput, LabelError, ValueError):
    """A bad label request: a prefix, count, template, style or character that cannot be printed."""
