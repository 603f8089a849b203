"""``tapefs notification``: notification targets and matchers (notifications.cfg), and a test
message to one target (docs/notifications.md)."""

from __future__ import annotations

from collections.abc import Callable

import click

from tapefs.notify.config import (
    MATCH_MODES,
    MATCHER_KEYS,
    SMTP_MODES,
    TARGET_KINDS,
    WEBHOOK_METHODS,
    Matcher,
    Target,
    create_matcher,
    create_target,
    load_config,
    remove_matcher,
    remove_target,
    update_matcher,
    update_target,
)
from tapefs.notify.dispatch import send_test
from tapefs.notify.errors import NotificationConfigError
from tapefs_tools.cli import emit, format_value, key_value_table, output_format_option, simple_table

TARGET_COLUMNS = ("name", "type", "disable", "comment")
MATCHER_COLUMNS = ("name", "target", "match-severity", "match-field", "match-calendar", "mode", "invert-match")

#: --delete KEY -> Target attribute
TARGET_DELETABLE = {
    "mailto": "mailto",
    "from-address": "from_address",
    "author": "author",
    "port": "port",
    "mode": "mode",
    "username": "username",
    "password": "password",
    "method": "method",
    "header": "headers",
    "body": "body",
    "secret": "secrets",
    "comment": "comment",
    "disable": "disable",
}


@click.group("notification")
def notification() -> None:
    """Notification targets, matchers and test messages."""


@notification.group("target")
def target_group() -> None:
    """Where notifications go: sendmail, smtp, gotify, webhook."""


@notification.group("matcher")
def matcher_group() -> None:
    """Which notifications go to which targets."""


def _pairs(items: tuple[str, ...], option: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise NotificationConfigError(f"{option} {item!r}: expected NAME=VALUE")
        pairs.append((name, value))
    return tuple(pairs)


def _target_options(fn: Callable) -> Callable:
    for option in reversed(
        (
            click.option("--mailto", multiple=True, help="Mail recipient (repeatable; sendmail, smtp)."),
            click.option("--from-address", default=None, help="Sender address (sendmail, smtp)."),
            click.option("--author", default=None, help="Sender name (sendmail, smtp)."),
            click.option("--server", default=None, help="SMTP host, or Gotify URL (http[s]://HOST[:PORT])."),
            click.option("--port", type=click.IntRange(1, 65535), default=None, help="SMTP port (default by mode)."),
            click.option("--mode", type=click.Choice(SMTP_MODES), default=None, help="SMTP security (default: tls)."),
            click.option("--username", default=None, help="SMTP login name."),
            click.option("--password", default=None, help="SMTP password (kept in notifications-priv.cfg)."),
            click.option("--token", default=None, help="Gotify application token (kept in notifications-priv.cfg)."),
            click.option("--url", default=None, help="Webhook URL (a template)."),
            click.option("--method", type=click.Choice(WEBHOOK_METHODS), default=None, help="Webhook method."),
            click.option("--header", multiple=True, metavar="NAME=VALUE", help="Webhook header (repeatable)."),
            click.option("--body", default=None, help="Webhook body template."),
            click.option(
                "--secret",
                multiple=True,
                metavar="NAME=VALUE",
                help="Webhook secret for {{ secrets.NAME }} (repeatable; kept in notifications-priv.cfg).",
            ),
            click.option("--comment", default=None, help="Free text."),
            click.option("--disable/--enable", "disable", default=None, help="Send nothing to this target."),
        )
    ):
        fn = option(fn)
    return fn


def _target_changes(options: dict) -> dict:
    changes = {
        key: value for key, value in options.items() if value is not None and key not in ("mailto", "header", "secret")
    }
    if options["mailto"]:
        changes["mailto"] = tuple(options["mailto"])
    if options["header"]:
        changes["headers"] = _pairs(options["header"], "--header")
    if options["secret"]:
        changes["secrets"] = _pairs(options["secret"], "--secret")
    return changes


@target_group.command("create")
@click.argument("kind", metavar="TYPE", type=click.Choice(TARGET_KINDS))
@click.argument("name")
@_target_options
def target_create(kind: str, name: str, **options) -> None:
    """Add a target of TYPE (sendmail, smtp, gotify or webhook) named NAME."""
    create_target(Target(name, kind, **_target_changes(options)))


@target_group.command("update")
@click.argument("name")
@_target_options
@click.option("--delete", multiple=True, type=click.Choice(list(TARGET_DELETABLE)), help="Remove a property.")
def target_update(name: str, delete: tuple[str, ...], **options) -> None:
    """Change a target (a list option replaces the whole list)."""
    update_target(name, _target_changes(options), [TARGET_DELETABLE[key] for key in delete])


@target_group.command("remove")
@click.argument("name")
def target_remove(name: str) -> None:
    """Remove a target no matcher uses."""
    remove_target(name)


@target_group.command("list")
@output_format_option
def target_list(output_format: str) -> None:
    """The targets (secrets are never shown)."""
    rows = [target.public_dict() for target in load_config().targets.values()]

    def render(out) -> None:
        table = simple_table(*TARGET_COLUMNS)
        for row in rows:
            table.add_row(*(format_value(row.get(column)) for column in TARGET_COLUMNS))
        out.print(table)

    emit(output_format, rows, render)


@target_group.command("show")
@click.argument("name")
@output_format_option
def target_show(name: str, output_format: str) -> None:
    """One target's settings; a secret shows only as set, by name."""
    data = load_config().target(name).public_dict()
    emit(output_format, data, lambda out: out.print(key_value_table(list(data.items()))))


def _matcher_options(fn: Callable) -> Callable:
    for option in reversed(
        (
            click.option("--target", "targets", multiple=True, help="Target to notify (repeatable)."),
            click.option(
                "--match-severity",
                multiple=True,
                metavar="SEV[,SEV...]",
                help="info, notice, warning, error, unknown (repeatable).",
            ),
            click.option(
                "--match-field",
                multiple=True,
                metavar="exact:FIELD=V[,V...]|regex:FIELD=RE",
                help="A metadata field: type, datastore, job-id, media-pool, hostname (repeatable).",
            ),
            click.option(
                "--match-calendar",
                multiple=True,
                metavar="EVENT",
                help="Calendar event whose minutes match, e.g. 'mon..fri 8..17:*' (repeatable).",
            ),
            click.option("--mode", type=click.Choice(MATCH_MODES), default=None, help="All or any directive."),
            click.option("--invert-match/--no-invert-match", default=None, help="Negate the result."),
            click.option("--comment", default=None, help="Free text."),
            click.option("--disable/--enable", "disable", default=None, help="Ignore this matcher."),
        )
    ):
        fn = option(fn)
    return fn


def _matcher_changes(options: dict) -> dict:
    return {key: tuple(value) if isinstance(value, tuple) else value for key, value in options.items() if value}


@matcher_group.command("create")
@click.argument("name")
@_matcher_options
def matcher_create(name: str, **options) -> None:
    """Add a matcher: notifications matching it go to its targets."""
    create_matcher(Matcher(name, **_matcher_changes(options)))


@matcher_group.command("update")
@click.argument("name")
@_matcher_options
@click.option("--delete", multiple=True, type=click.Choice(list(MATCHER_KEYS)), help="Remove a property.")
def matcher_update(name: str, delete: tuple[str, ...], **options) -> None:
    """Change a matcher (a list option replaces the whole list)."""
    changes = _matcher_changes(options)
    for flag in ("invert_match", "disable"):
        if options[flag] is False:
            changes[flag] = False
    update_matcher(name, changes, [MATCHER_KEYS[key] for key in delete])


@matcher_group.command("remove")
@click.argument("name")
def matcher_remove(name: str) -> None:
    """Remove a matcher."""
    remove_matcher(name)


@matcher_group.command("list")
@output_format_option
def matcher_list(output_format: str) -> None:
    """The matchers."""
    rows = [matcher.public_dict() for matcher in load_config().matchers.values()]

    def render(out) -> None:
        table = simple_table(*MATCHER_COLUMNS)
        for row in rows:
            table.add_row(*(format_value(row.get(column)) for column in MATCHER_COLUMNS))
        out.print(table)

    emit(output_format, rows, render)


@matcher_group.command("show")
@click.argument("name")
@output_format_option
def matcher_show(name: str, output_format: str) -> None:
    """One matcher's settings."""
    data = load_config().matcher(name).public_dict()
    emit(output_format, data, lambda out: out.print(key_value_table(list(data.items()))))


@notification.command("test")
@click.argument("target")
def notification_test(target: str) -> None:
    """Send a test notification to TARGET now; fails if it cannot be delivered."""
    send_test(target)
    click.echo(f"test notification sent to {target}")
