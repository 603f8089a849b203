"""Notifications (docs/notifications.md): targets and matchers in ``notifications.cfg``, their
secrets in the 0600 ``notifications-priv.cfg``, built-in templates that a file on disk
overrides, and one function per event kind (:mod:`tapefs.notify.events`) for the jobs to send
with :func:`tapefs.notify.dispatch.send`. Delivery never raises into a job: a failure is logged.
"""
