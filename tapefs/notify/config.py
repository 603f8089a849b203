"""``notifications.cfg`` (targets and matchers) and ``notifications-priv.cfg`` (their secrets,
mode 0600) in the configuration directory, in PBS's section-config form::

    smtp: mail-ops
        server mail.example.com
        mode starttls
        username backup
        from-address tape@example.com
        mailto ops@example.com

    matcher: errors-to-ops
        match-severity error,warning
        target mail-ops

and in the private file ``smtp: mail-ops`` with ``password ...``. Webhook headers and secrets
are ``name=NAME,value=BASE64`` items and the body is base64, as PBS stores them.

Without a notifications.cfg the built-in default applies: matcher ``default-matcher`` sends
everything to the sendmail target ``mail-to-root`` (mail to ``root``), skipped quietly where
no sendmail is installed. Every value is checked when it is set (``create``/``update``) and when
the file is read, so a bad regex, calendar event or unknown target never waits for an event.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from tapefs.config import paths, section_config
from tapefs.config.calendar_event import CalendarEvent
from tapefs.config.private_files import make_private_dirs, open_private_file
from tapefs.config.section_config import Section, SectionConfig
from tapefs.notify.errors import NotificationConfigError, UnknownNotificationEntry
from tapefs.notify.notification import SEVERITIES
from tapefs.notify.template_engine import parse_template

CONFIG_NAME = "notifications.cfg"
PRIVATE_CONFIG_NAME = "notifications-priv.cfg"
SECRET_FILE_MODE = 0o600

TARGET_KINDS = ("sendmail", "smtp", "gotify", "webhook")
MATCHER_SECTION = "matcher"
SMTP_MODES = ("insecure", "starttls", "tls")
SMTP_DEFAULT_PORTS = {"insecure": 25, "starttls": 587, "tls": 465}
WEBHOOK_METHODS = ("post", "put", "get")
MATCH_MODES = ("all", "any")

DEFAULT_TARGET = "mail-to-root"
DEFAULT_MATCHER = "default-matcher"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_SECRET_NAME = re.compile(r"[A-Za-z0-9_-]+")
_MAIL = re.compile(r"[^@\s,]+(@[^@\s,]+)?")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}

#: target kind -> the Target attributes it uses (besides name, kind, comment, disable)
KIND_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "sendmail": ("mailto", "from_address", "author"),
    "smtp": ("server", "port", "mode", "username", "password", "mailto", "from_address", "author"),
    "gotify": ("server", "token"),
    "webhook": ("url", "method", "headers", "body", "secrets"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "sendmail": ("mailto",),
    "smtp": ("server", "from_address", "mailto"),
    "gotify": ("server", "token"),
    "webhook": ("url",),
}
#: attributes kept in notifications-priv.cfg, never shown
SECRET_ATTRIBUTES = ("password", "token", "secrets")
#: attribute -> key in the file (the key of a list attribute repeats, one line per item)
_FILE_KEYS = {
    "mailto": "mailto",
    "from_address": "from-address",
    "author": "author",
    "server": "server",
    "port": "port",
    "mode": "mode",
    "username": "username",
    "password": "password",
    "token": "token",
    "url": "url",
    "method": "method",
    "headers": "header",
    "body": "body",
    "secrets": "secret",
    "comment": "comment",
    "disable": "disable",
}
_LIST_KEYS = ("mailto", "header", "secret")


@dataclass(frozen=True)
class Target:
    name: str
    kind: str
    comment: str | None = None
    disable: bool = False
    mailto: tuple[str, ...] = ()
    from_address: str | None = None
    author: str | None = None
    server: str | None = None
    port: int | None = None
    mode: str | None = None
    username: str | None = None
    password: str | None = None
    token: str | None = None
    url: str | None = None
    method: str | None = None
    #: (name, value) pairs; values are templates
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    #: (name, value) pairs, for ``{{ secrets.NAME }}`` in the url, headers and body
    secrets: tuple[tuple[str, str], ...] = ()

    @property
    def smtp_mode(self) -> str:
        return self.mode or "tls"

    @property
    def smtp_port(self) -> int:
        return self.port or SMTP_DEFAULT_PORTS[self.smtp_mode]

    def secret_values(self) -> list[str]:
        """Every secret of this target, to be cut out of any message that could show it."""
        values = [self.password, self.token, *(value for _, value in self.secrets)]
        return [value for value in values if value]

    def public_dict(self) -> dict:
        """The target as ``show`` and ``list`` print it: secrets only by name."""
        data: dict = {"name": self.name, "type": self.kind}
        for attribute in KIND_ATTRIBUTES[self.kind] + ("comment", "disable"):
            value = getattr(self, attribute)
            key = _FILE_KEYS[attribute]
            if attribute in ("password", "token"):
                data[key] = "(set)" if value else None
            elif attribute == "secrets":
                data["secret"] = [name for name, _ in value]
            elif attribute == "headers":
                data["header"] = [f"{name}={text}" for name, text in value]
            elif isinstance(value, tuple):
                data[key] = list(value)
            else:
                data[key] = value
        return data


@dataclass(frozen=True)
class Matcher:
    name: str
    targets: tuple[str, ...] = ()
    #: each item a comma list of severities; one directive per item
    match_severity: tuple[str, ...] = ()
    #: ``exact:FIELD=V1,V2`` or ``regex:FIELD=RE``
    match_field: tuple[str, ...] = ()
    #: calendar events: the notification's minute must be one of the event's
    match_calendar: tuple[str, ...] = ()
    mode: str = "all"
    invert_match: bool = False
    comment: str | None = None
    disable: bool = False

    def public_dict(self) -> dict:
        return {
            "name": self.name,
            "target": list(self.targets),
            "match-severity": list(self.match_severity),
            "match-field": list(self.match_field),
            "match-calendar": list(self.match_calendar),
            "mode": self.mode,
            "invert-match": self.invert_match,
            "comment": self.comment,
            "disable": self.disable,
        }


MATCHER_KEYS = {
    "target": "targets",
    "match-severity": "match_severity",
    "match-field": "match_field",
    "match-calendar": "match_calendar",
    "mode": "mode",
    "invert-match": "invert_match",
    "comment": "comment",
    "disable": "disable",
}
_MATCHER_LIST_KEYS = ("target", "match-severity", "match-field", "match-calendar")


@dataclass
class NotificationConfig:
    targets: dict[str, Target] = field(default_factory=dict)
    matchers: dict[str, Matcher] = field(default_factory=dict)

    @classmethod
    def default(cls) -> NotificationConfig:
        return cls(
            {DEFAULT_TARGET: Target(DEFAULT_TARGET, "sendmail", comment="default: mail to root", mailto=("root",))},
            {DEFAULT_MATCHER: Matcher(DEFAULT_MATCHER, targets=(DEFAULT_TARGET,), comment="default: everything")},
        )

    def target(self, name: str) -> Target:
        try:
            return self.targets[name]
        except KeyError:
            known = ", ".join(self.targets) or "none"
            raise UnknownNotificationEntry(f"no notification target named {name!r} (targets: {known})") from None

    def matcher(self, name: str) -> Matcher:
        try:
            return self.matchers[name]
        except KeyError:
            known = ", ".join(self.matchers) or "none"
            raise UnknownNotificationEntry(f"no notification matcher named {name!r} (matchers: {known})") from None

    def check(self) -> None:
        """Every target and matcher valid, every target a matcher names configured."""
        for target in self.targets.values():
            check_target(target)
        for matcher in self.matchers.values():
            check_matcher(matcher)
            for name in matcher.targets:
                if name not in self.targets:
                    raise NotificationConfigError(f"matcher {matcher.name!r}: no notification target named {name!r}")


# -- checks ----------------------------------------------------------------------------------


def _fail(what: str, message: str) -> NotificationConfigError:
    return NotificationConfigError(f"{what}: {message}")


def check_name(name: str, kind: str) -> None:
    if not _NAME.fullmatch(name):
        raise NotificationConfigError(
            f"invalid {kind} name {name!r} (1 to 32 letters, digits, '.', '_', '-'; starting with a letter or digit)"
        )


def check_target(target: Target) -> None:
    what = f"notification target {target.name!r}"
    check_name(target.name, "notification target")
    if target.kind not in TARGET_KINDS:
        raise _fail(what, f"unknown type {target.kind!r} (one of {', '.join(TARGET_KINDS)})")
    allowed = set(KIND_ATTRIBUTES[target.kind]) | {"name", "kind", "comment", "disable"}
    for item in fields(Target):
        value = getattr(target, item.name)
        if item.name not in allowed and value not in (None, (), False):
            raise _fail(what, f"a {target.kind} target has no {_FILE_KEYS[item.name]!r}")
    for attribute in REQUIRED[target.kind]:
        if getattr(target, attribute) in (None, (), ""):
            raise _fail(what, f"a {target.kind} target needs {_FILE_KEYS[attribute]!r}")
    for address in target.mailto:
        if not _MAIL.fullmatch(address):
            raise _fail(what, f"invalid mail address {address!r}")
    if target.from_address is not None and not _MAIL.fullmatch(target.from_address):
        raise _fail(what, f"invalid from-address {target.from_address!r}")
    if target.mode is not None and target.mode not in SMTP_MODES:
        raise _fail(what, f"mode must be one of {', '.join(SMTP_MODES)}, not {target.mode!r}")
    if target.port is not None and not 1 <= target.port <= 65535:
        raise _fail(what, f"port {target.port} is out of range 1..65535")
    if target.kind == "gotify" and not re.match(r"https?://", target.server or ""):
        raise _fail(what, f"server must be an http:// or https:// URL, not {target.server!r}")
    if target.kind == "smtp" and not re.fullmatch(r"[A-Za-z0-9.:\[\]-]+", target.server or ""):
        raise _fail(what, f"invalid server name {target.server!r}")
    if target.method is not None and target.method not in WEBHOOK_METHODS:
        raise _fail(what, f"method must be one of {', '.join(WEBHOOK_METHODS)}, not {target.method!r}")
    if target.url is not None:
        if not re.match(r"https?://", target.url):
            raise _fail(what, f"url must start with http:// or https://, not {target.url!r}")
        parse_template(target.url)
    for name, value in target.headers:
        if not _HEADER_NAME.fullmatch(name):
            raise _fail(what, f"invalid header name {name!r}")
        parse_template(value)
    for name, _ in target.secrets:
        if not _SECRET_NAME.fullmatch(name):
            raise _fail(what, f"invalid secret name {name!r} (letters, digits, '_', '-')")
    if target.body is not None:
        parse_template(target.body)


def check_matcher(matcher: Matcher) -> None:
    what = f"matcher {matcher.name!r}"
    check_name(matcher.name, "matcher")
    if matcher.mode not in MATCH_MODES:
        raise _fail(what, f"mode must be all or any, not {matcher.mode!r}")
    for item in matcher.match_severity:
        for severity in item.split(","):
            if severity.strip() not in SEVERITIES:
                raise _fail(what, f"unknown severity {severity!r} (one of {', '.join(SEVERITIES)})")
    for item in matcher.match_field:
        parse_field_match(item, what)
    for item in matcher.match_calendar:
        try:
            CalendarEvent.parse(item)
        except ValueError as error:
            raise _fail(what, f"match-calendar: {error}") from None


def parse_field_match(text: str, what: str = "match-field") -> tuple[str, str, list[str] | re.Pattern]:
    """``exact:FIELD=V1,V2`` -> ("exact", FIELD, [V1, V2]); ``regex:FIELD=RE`` -> ("regex", FIELD, pattern)."""
    kind, _, rest = text.partition(":")
    name, equals, value = rest.partition("=")
    if kind not in ("exact", "regex") or not equals or not name:
        raise _fail(what, f"match-field {text!r} is not exact:FIELD=VALUE[,VALUE...] or regex:FIELD=REGEX")
    if kind == "exact":
        return kind, name, value.split(",")
    try:
        return kind, name, re.compile(value)
    except re.error as error:
        raise _fail(what, f"match-field {text!r}: bad regular expression: {error}") from None


# -- the files -------------------------------------------------------------------------------


def _boolean(text: str, what: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise _fail(what, f"expected a boolean, got {text!r}")


def _encode_pair(name: str, value: str) -> str:
    return f"name={name},value={base64.b64encode(value.encode()).decode()}"


def _decode_pair(text: str, what: str) -> tuple[str, str]:
    match = re.fullmatch(r"name=([^,]+),value=([A-Za-z0-9+/=]*)", text)
    if not match:
        raise _fail(what, f"{text!r} is not name=NAME,value=BASE64")
    return match[1], _decode_base64(match[2], what)


def _decode_base64(text: str, what: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise _fail(what, f"{text[:20]!r}... is not base64 of UTF-8 text") from None


def _target_from_sections(public: Section, private: Section | None) -> Target:
    what = f"notification target {public.id!r}"
    values: dict = {"name": public.id, "kind": public.type}
    attribute_of = {key: attribute for attribute, key in _FILE_KEYS.items()}
    for key in public.properties:
        if attribute_of.get(key) in SECRET_ATTRIBUTES:
            raise _fail(what, f"{key!r} belongs in {PRIVATE_CONFIG_NAME}, not in {CONFIG_NAME}")
    properties = dict(public.properties)
    if private is not None:
        for key, value in private.properties.items():
            if attribute_of.get(key) not in SECRET_ATTRIBUTES:
                raise _fail(what, f"{PRIVATE_CONFIG_NAME}: unknown secret {key!r}")
            properties[key] = value
    for key, value in properties.items():
        attribute = attribute_of.get(key)
        if attribute is None:
            raise _fail(what, f"unknown property {key!r}")
        items = value if isinstance(value, list) else [value]
        if attribute in ("headers", "secrets"):
            values[attribute] = tuple(_decode_pair(item, what) for item in items)
        elif attribute == "mailto":
            values[attribute] = tuple(address.strip() for item in items for address in item.split(",") if address)
        elif attribute == "body":
            values[attribute] = _decode_base64(items[0], what)
        elif attribute == "disable":
            values[attribute] = _boolean(items[0], what)
        elif attribute == "port":
            if not items[0].isdigit():
                raise _fail(what, f"port must be a number, not {items[0]!r}")
            values[attribute] = int(items[0])
        else:
            values[attribute] = items[0]
    return Target(**values)


def _target_sections(target: Target) -> tuple[Section, Section | None]:
    public: dict[str, str | list[str]] = {}
    private: dict[str, str | list[str]] = {}
    for attribute in KIND_ATTRIBUTES[target.kind] + ("comment", "disable"):
        value = getattr(target, attribute)
        if value in (None, (), False, ""):
            continue
        key = _FILE_KEYS[attribute]
        if attribute in ("headers", "secrets"):
            text: str | list[str] = [_encode_pair(name, item) for name, item in value]
        elif attribute == "mailto":
            text = list(value)
        elif attribute == "body":
            text = base64.b64encode(value.encode()).decode()
        elif attribute == "disable":
            text = "true"
        else:
            text = str(value)
        (private if attribute in SECRET_ATTRIBUTES else public)[key] = text
    return Section(target.kind, target.name, public), Section(target.kind, target.name, private) if private else None


def _matcher_from_section(section: Section) -> Matcher:
    what = f"matcher {section.id!r}"
    values: dict = {"name": section.id}
    for key, value in section.properties.items():
        attribute = MATCHER_KEYS.get(key)
        if attribute is None:
            raise _fail(what, f"unknown property {key!r} (known: {', '.join(MATCHER_KEYS)})")
        if key in _MATCHER_LIST_KEYS:
            values[attribute] = tuple(value if isinstance(value, list) else [value])
        elif attribute in ("invert_match", "disable"):
            values[attribute] = _boolean(str(value), what)
        else:
            values[attribute] = value
    return Matcher(**values)


def _matcher_section(matcher: Matcher) -> Section:
    properties: dict[str, str | list[str]] = {}
    for key, attribute in MATCHER_KEYS.items():
        value = getattr(matcher, attribute)
        if value in (None, (), False, "") or (key == "mode" and value == "all"):
            continue
        properties[key] = list(value) if isinstance(value, tuple) else ("true" if value is True else value)
    return Section(MATCHER_SECTION, matcher.name, properties)


def _array_keys() -> dict[str, tuple[str, ...]]:
    keys: dict[str, tuple[str, ...]] = {kind: _LIST_KEYS for kind in TARGET_KINDS}
    keys[MATCHER_SECTION] = _MATCHER_LIST_KEYS
    return keys


def config_path() -> Path:
    return paths.config_file(CONFIG_NAME)


def private_config_path() -> Path:
    return paths.config_file(PRIVATE_CONFIG_NAME)


def load_config() -> NotificationConfig:
    """The configuration in force: the files, or the built-in default if there is no notifications.cfg."""
    path = config_path()
    if not path.exists():
        return NotificationConfig.default()
    public = section_config.load(path, _array_keys())
    private = section_config.load(private_config_path(), _array_keys())
    config = NotificationConfig()
    for section in public:
        try:
            if section.type == MATCHER_SECTION:
                config.matchers[section.id] = _matcher_from_section(section)
            elif section.type in TARGET_KINDS:
                secret = private.get(section.id)
                config.targets[section.id] = _target_from_sections(section, secret)
            else:
                known = ", ".join((*TARGET_KINDS, MATCHER_SECTION))
                raise _fail(f"section {section.id!r}", f"unknown type {section.type!r} (one of {known})")
        except NotificationConfigError as error:
            raise NotificationConfigError(f"{path}: {error}") from None
    try:
        config.check()
    except NotificationConfigError as error:
        raise NotificationConfigError(f"{path}: {error}") from None
    return config


def save_config(config: NotificationConfig) -> None:
    """Check and write both files: notifications.cfg 0640, notifications-priv.cfg 0600."""
    config.check()
    public, private = SectionConfig(), SectionConfig()
    for target in config.targets.values():
        public_section, private_section = _target_sections(target)
        public.add(public_section)
        if private_section is not None:
            private.add(private_section)
    for matcher in config.matchers.values():
        public.add(_matcher_section(matcher))
    # The secrets first: a target never appears without the secret it needs.
    section_config.save(private_config_path(), private, mode=SECRET_FILE_MODE)
    section_config.save(config_path(), public)


_Entry = TypeVar("_Entry", Target, Matcher)


class _ConfigLock:
    """An flock on ``.notifications.lck`` around one read-modify-write of the files."""

    def __enter__(self) -> None:
        directory = make_private_dirs(paths.config_dir())
        self._fd = open_private_file(directory / ".notifications.lck", os.O_RDWR)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc_info) -> None:
        os.close(self._fd)


def _edit(change) -> None:
    with _ConfigLock():
        config = load_config()
        change(config)
        save_config(config)


def _changed(entry: _Entry, changes: Mapping[str, Any], delete: Iterable[str]) -> _Entry:
    """``entry`` with ``changes`` set and the attributes in ``delete`` back at their defaults."""
    deleted = set(delete)
    values: dict[str, Any] = {item.name: item.default for item in fields(entry) if item.name in deleted}
    values.update(changes)
    return replace(entry, **values)


def create_target(target: Target) -> None:
    def change(config: NotificationConfig) -> None:
        if target.name in config.targets or target.name in config.matchers:
            raise NotificationConfigError(f"{target.name!r} already exists in {CONFIG_NAME}")
        config.targets[target.name] = target

    _edit(change)


def update_target(name: str, changes: Mapping[str, Any], delete: Iterable[str] = ()) -> None:
    """``changes``: Target attributes to set; ``delete``: attributes to reset to their default."""

    def change(config: NotificationConfig) -> None:
        config.targets[name] = _changed(config.target(name), changes, delete)

    _edit(change)


def remove_target(name: str) -> None:
    def change(config: NotificationConfig) -> None:
        config.target(name)
        users = [m.name for m in config.matchers.values() if name in m.targets]
        if users:
            raise NotificationConfigError(f"target {name!r} is still used by matcher {', '.join(users)}")
        del config.targets[name]

    _edit(change)


def create_matcher(matcher: Matcher) -> None:
    def change(config: NotificationConfig) -> None:
        if matcher.name in config.targets or matcher.name in config.matchers:
            raise NotificationConfigError(f"{matcher.name!r} already exists in {CONFIG_NAME}")
        config.matchers[matcher.name] = matcher

    _edit(change)


def update_matcher(name: str, changes: Mapping[str, Any], delete: Iterable[str] = ()) -> None:
    def change(config: NotificationConfig) -> None:
        config.matchers[name] = _changed(config.matcher(name), changes, delete)

    _edit(change)


def remove_matcher(name: str) -> None:
    def change(config: NotificationConfig) -> None:
        config.matcher(name)
        del config.matchers[name]

    _edit(change)
