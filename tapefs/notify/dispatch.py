"""Sending a notification: render it, find the targets its matchers name, deliver to each.

:func:`send` never raises: a job's result does not depend on whether anyone was told. A target
that fails is logged as a warning (the job's log shows it) and the next one is tried; the
built-in default target is skipped quietly where no sendmail is installed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tapefs.notify import templates
from tapefs.notify.config import DEFAULT_TARGET, NotificationConfig, load_config
from tapefs.notify.errors import DeliveryFailed, NotificationError
from tapefs.notify.matcher import matched_targets
from tapefs.notify.notification import Notification, Severity
from tapefs.notify.targets import Rendered, SendmailMissing, deliver

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    target: str
    #: None when delivered; otherwise why not (no secret in it)
    error: str | None = None


def render(notification: Notification) -> Rendered:
    title, message = templates.render(notification.template, notification.data)
    return Rendered(notification, title, message)


def send(notification: Notification, config: NotificationConfig | None = None) -> list[Delivery]:
    """Deliver to every matched target; the outcome per target (also logged), never an exception."""
    try:
        config = config if config is not None else load_config()
        rendered = render(notification)
        names = matched_targets(list(config.matchers.values()), notification)
    except Exception as error:  # a broken configuration must not fail the job that notifies
        log.warning("notification %s not sent: %s", notification.template, error)
        return []
    deliveries = []
    for name in names:
        target = config.targets.get(name)
        if target is None or target.disable:
            continue
        try:
            deliver(target, rendered)
        except SendmailMissing as error:
            if name == DEFAULT_TARGET:
                log.info("notification %s: %s", notification.template, error)
            else:
                log.warning("notification %s not sent: %s", notification.template, error)
            deliveries.append(Delivery(name, str(error)))
            continue
        except DeliveryFailed as error:
            log.warning("notification %s not sent: %s", notification.template, error)
            deliveries.append(Delivery(name, str(error)))
            continue
        log.info("notification %s sent to %s", notification.template, name)
        deliveries.append(Delivery(name))
    return deliveries


def send_test(target_name: str, config: NotificationConfig | None = None) -> None:
    """``notification test``: send the test template to one target; DeliveryFailed if it fails."""
    config = config if config is not None else load_config()
    target = config.target(target_name)
    if target.disable:
        raise NotificationError(f"notification target {target_name!r} is disabled")
    notification = Notification("test", Severity.INFO, {"target": target_name}, {"type": "test"})
    deliver(target, render(notification))
