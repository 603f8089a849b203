"""Templates: the Handlebars subset, every built-in template renders, an override on disk wins."""
import pytest

from tapefs.notify import events, templates
from tapefs.notify.dispatch import render
from tapefs.notify.errors import NotificationConfigError
from tapefs.notify.template_engine import parse_template, render_template


@pytest.mark.parametrize("template, expected", [
    ("{{ a }}/{{a}}", "1/1"),
    ("{{ fields.job-id }}", "j-1"),
    ("{{ missing }}|{{ fields.missing }}", "|"),
    ("{{ list }}", "x, y"),
    ("{{#each list}}<{{ this }}>{{/each}}", "<x><y>"),
    ("{{#if flag}}yes{{else}}no{{/if}} {{#if missing}}yes{{else}}no{{/if}}", "yes no"),
    ("{{ json text }}", '"say \\"hi\\""'),
    ("{{ url-encode text }}", "say%20%22hi%22"),
    ("{{ escape text }}", "say &quot;hi&quot;"),
    ("{{{ text }}}", 'say "hi"'),
    ('{"k": {{ json a }}}', '{"k": 1}'),
])
def test_render(template, expected):
    context = {"a": 1, "fields": {"job-id": "j-1"}, "list": ["x", "y"], "flag": True, "text": 'say "hi"'}
    assert render_template(template, context) == expected


@pytest.mark.parametrize("template, message", [
    ("{{#each list}}", "is not closed"),
    ("{{/if}}", "unexpected"),
    ("{{#while x}}{{/while}}", "unknown block"),
    ("{{ shout x }}", "cannot read"),
    ("{{ a b c }}", "cannot read"),
    ("{{ $x }}", "is not a value name"),
])
def test_bad_templates_are_refused(template, message):
    with pytest.raises(NotificationConfigError, match=message):
        parse_template(template)


def test_every_event_renders_a_subject_and_a_body():
    notifications = [
        events.tape_backup("main", "pool", "drive0", ["T1"], ["vm/1/2026-01-01T00:00:00Z"], 3725.0, "job1"),
        events.tape_backup("main", "pool", "drive0", [], [], 1.0, error="no writable media"),
        events.tape_load("T1", "drive0", "backup needs a tape", is_changer=False),
        events.verify("main", "v1"),
        events.verify("main", "v1", failed_snapshots=["vm/1/2026-01-01T00:00:00Z"]),
        events.garbage_collection("main", {"removed-chunks": 3, "removed-bytes": 12, "disk-chunks": 1,
                                           "disk-bytes": 4}),
        events.garbage_collection("main", error="locked"),
        events.prune("main", "p1", removed=2, kept=5),
        events.prune("main", error="x"),
        events.sync("backup-s3", "main", "weekly"),
        events.sync("backup-s3", "main", error="403"),
        events.threshold_exceeded("backup-s3", "request rate", 500, 812, True),
    ]
    for notification in notifications:
        rendered = render(notification)
        assert rendered.title and "{{" not in rendered.title + rendered.message, notification.template
    assert "1h 2m 5s" in render(notifications[0]).message
    assert render(notifications[2]).message.startswith("backup needs a tape\n\nPlease insert or load tape T1 into drive")
    assert "vm/1/2026-01-01T00:00:00Z" in render(notifications[4]).message
    assert render(notifications[11]).title == "Datastore 'backup-s3': request rate above its limit"


def test_template_on_disk_overrides_the_built_in(notify_config):
    directory = notify_config / "notification-templates" / "default"
    directory.mkdir(parents=True)
    (directory / "gc-ok-subject.txt.hbs").write_text("GC {{ datastore }} on {{ hostname }}\n")
    rendered = render(events.garbage_collection("main", {}))
    assert rendered.title.startswith("GC main on ")
    assert rendered.message == render_template(templates.BUILT_IN["gc-ok"][1], events.garbage_collection("main").data)
