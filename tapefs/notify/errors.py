"""Errors of the notification system: a bad configuration (at create time or when it is read),
an unknown target or matcher, and a delivery that failed (raised only by ``notification test``;
a job's notifications log their failures instead)."""

from tapefs.errors import InvalidInput, NotFound, TapefsError


class NotificationError(TapefsError):
    """Base class of every notification error."""


class NotificationConfigError(InvalidInput, NotificationError, ValueError):
    """A target, matcher or template that is not valid; the message names it and says why."""


class UnknownNotificationEntry(NotFound, NotificationError, LookupError):
    """No target or matcher of this name in notifications.cfg."""


class DeliveryFailed(NotificationError):
    """A target could not deliver a notification; the message never holds a secret."""
