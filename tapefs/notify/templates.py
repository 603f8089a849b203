"""The subject and body of each notification: built in, or read from
``<config dir>/notification-templates/default/NAME-subject.txt.hbs`` and ``NAME-body.txt.hbs``
when such a file exists (as PBS looks in /etc/proxmox-backup/notification-templates)."""

from __future__ import annotations

import logging
from pathlib import Path

from tapefs.config import paths
from tapefs.notify.errors import NotificationConfigError
from tapefs.notify.template_engine import render_template

log = logging.getLogger(__name__)

OVERRIDE_DIR = Path("notification-templates") / "default"

_FOOTER = "\n--\nsent by tapefs on {{ fqdn }}\n"

#: template name -> (subject, body)
BUILT_IN: dict[str, tuple[str, str]] = {
    "test": (
        "Test notification",
        "This is a test of the notification target '{{ target }}'." + _FOOTER,
    ),
    "tape-backup-ok": (
        "Tape backup of datastore '{{ datastore }}' successful",
        "Tape backup of datastore '{{ datastore }}' to pool '{{ tape-pool }}' on drive '{{ tape-drive }}'"
        "{{#if job-id}} (job {{ job-id }}){{/if}} finished in {{ job-duration }}.\n\n"
        "Tapes used: {{ used-tapes-list }}\n\nSnapshots written:\n{{#each snapshot-list}}  {{ this }}\n{{/each}}"
        + _FOOTER,
    ),
    "tape-backup-err": (
        "Tape backup of datastore '{{ datastore }}' failed",
        "Tape backup of datastore '{{ datastore }}' to pool '{{ tape-pool }}' on drive '{{ tape-drive }}'"
        "{{#if job-id}} (job {{ job-id }}){{/if}} failed after {{ job-duration }}:\n\n  {{ error }}\n\n"
        "Tapes used: {{ used-tapes-list }}\n\nSnapshots written:\n{{#each snapshot-list}}  {{ this }}\n{{/each}}"
        + _FOOTER,
    ),
    "tape-load": (
        "Load tape {{ tape-label }}",
        "{{ load-reason }}\n\nPlease insert or load tape {{ tape-label }} into {{ drive-type }} '{{ tape-drive }}'."
        + _FOOTER,
    ),
    "verify-ok": (
        "Verify of datastore '{{ datastore }}' successful",
        "Verification of datastore '{{ datastore }}'{{#if job-id}} (job {{ job-id }}){{/if}} found no damage."
        + _FOOTER,
    ),
    "verify-err": (
        "Verify of datastore '{{ datastore }}' failed",
        "Verification of datastore '{{ datastore }}'{{#if job-id}} (job {{ job-id }}){{/if}} failed"
        "{{#if error}}: {{ error }}{{/if}}.\n\n"
        "{{#if failed-snapshot-list}}Damaged snapshots:\n{{#each failed-snapshot-list}}  {{ this }}\n{{/each}}{{/if}}"
        + _FOOTER,
    ),
    "gc-ok": (
        "Garbage collection of datastore '{{ datastore }}' successful",
        "Garbage collection of datastore '{{ datastore }}' removed {{ removed-chunks }} chunks "
        "({{ removed-bytes }} bytes); {{ disk-chunks }} chunks ({{ disk-bytes }} bytes) remain." + _FOOTER,
    ),
    "gc-err": (
        "Garbage collection of datastore '{{ datastore }}' failed",
        "Garbage collection of datastore '{{ datastore }}' failed:\n\n  {{ error }}\n" + _FOOTER,
    ),
    "prune-ok": (
        "Pruning datastore '{{ datastore }}' successful",
        "Prune{{#if job-id}} job {{ job-id }}{{/if}} of datastore '{{ datastore }}' removed "
        "{{ removed-count }} snapshots and kept {{ kept-count }}." + _FOOTER,
    ),
    "prune-err": (
        "Pruning datastore '{{ datastore }}' failed",
        "Prune{{#if job-id}} job {{ job-id }}{{/if}} of datastore '{{ datastore }}' failed:\n\n  {{ error }}\n"
        + _FOOTER,
    ),
    "sync-ok": (
        "Sync to datastore '{{ datastore }}' successful",
        "Sync{{#if job-id}} job {{ job-id }}{{/if}} from '{{ remote-datastore }}'"
        "{{#if remote}} on {{ remote }}{{/if}} to datastore '{{ datastore }}' finished." + _FOOTER,
    ),
    "sync-err": (
        "Sync to datastore '{{ datastore }}' failed",
        "Sync{{#if job-id}} job {{ job-id }}{{/if}} from '{{ remote-datastore }}'"
        "{{#if remote}} on {{ remote }}{{/if}} to datastore '{{ datastore }}' failed:\n\n  {{ error }}\n" + _FOOTER,
    ),
    "thresholds-exceeded": (
        "Datastore '{{ datastore }}': {{ threshold }} above its limit",
        "The {{ threshold }} of datastore '{{ datastore }}' is {{ value }}, above its limit of {{ limit }}.\n"
        "{{#if is-traffic}}A misconfigured sync job can issue many needless requests: check the jobs "
        "writing to this datastore.{{/if}}" + _FOOTER,
    ),
}


def override_dir() -> Path:
    return paths.config_dir() / OVERRIDE_DIR


def template_text(name: str, part: str) -> str:
    """The ``part`` ("subject" or "body") of template ``name``: the file on disk if there is one."""
    path = override_dir() / f"{name}-{part}.txt.hbs"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as error:
        log.warning("notification template %s: %s; using the built-in one", path, error)
    if name not in BUILT_IN:
        raise NotificationConfigError(f"no notification template named {name!r}")
    return BUILT_IN[name][0 if part == "subject" else 1]


def render(name: str, data: dict) -> tuple[str, str]:
    """Subject (one line) and body of template ``name`` filled with ``data``."""
    subject = render_template(template_text(name, "subject"), data)
    return " ".join(subject.split()), render_template(template_text(name, "body"), data)
