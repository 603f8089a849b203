"""Request telemetry of one S3 datastore: requests by method and by minute, bytes up and down,
errors and retries, stored objects; counted through botocore's event hooks, kept across restarts
in a JSON file in the state directory, and checked against a request-rate threshold.

PBS counts each logical request once, after its last retry, and only if it got an answer;
tapefs does the same, and also counts the retries and the requests that got no answer (errors).
"""

import fcntl
import io
import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tapefs.config.atomic_file import atomic_write
from tapefs.config.private_files import make_private_dirs

METHODS = ("GET", "PUT", "POST", "HEAD", "DELETE")
#: minutes of per-minute counts kept in the file
KEPT_MINUTES = 24 * 60
#: answers that are a normal outcome, not an error: a missing object, an object already there
EXPECTED_STATUSES = (404, 412)
FORMAT_VERSION = 1


@dataclass
class RequestCounters:
    """Counts of one process, since the last flush."""

    methods: Counter = field(default_factory=Counter)
    #: minute (Unix time // 60) -> requests in it
    per_minute: Counter = field(default_factory=Counter)
    uploaded: int = 0
    downloaded: int = 0
    errors: int = 0
    retries: int = 0
    objects_added: int = 0
    bytes_added: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, method: str, uploaded: int, downloaded: int, retries: int, error: bool) -> None:
        with self.lock:
            self.methods[method] += 1
            self.per_minute[int(time.time() // 60)] += 1
            self.uploaded += uploaded
            self.downloaded += downloaded
            self.retries += retries
            self.errors += error

    def object_added(self, size: int) -> None:
        with self.lock:
            self.objects_added += 1
            self.bytes_added += size

    def take(self) -> "RequestCounters":
        """The counts so far, leaving this object empty."""
        with self.lock:
            taken = RequestCounters(
                Counter(self.methods),
                Counter(self.per_minute),
                self.uploaded,
                self.downloaded,
                self.errors,
                self.retries,
                self.objects_added,
                self.bytes_added,
            )
            self.methods.clear()
            self.per_minute.clear()
            self.uploaded = self.downloaded = self.errors = self.retries = 0
            self.objects_added = self.bytes_added = 0
        return taken


def install_hooks(client, counters: RequestCounters) -> None:
    """Count every request ``client`` (a boto3 S3 client) makes."""

    def before_call(params, context, **_):
        body = params.get("body")
        if isinstance(body, bytes | bytearray):
            size = len(body)
        elif isinstance(body, io.BytesIO):  # botocore wraps a bytes body for PutObject
            size = body.getbuffer().nbytes
        else:
            size = 0
        context["tapefs_upload_size"] = size

    def after_call(http_response, parsed, model, context, **_):
        status = http_response.status_code
        headers = http_response.headers
        downloaded = 0
        if model.http["method"] == "GET" and status < 300:
            downloaded = int(headers.get("content-length") or 0)
        counters.count(
            model.http["method"],
            context.get("tapefs_upload_size", 0),
            downloaded,
            parsed.get("ResponseMetadata", {}).get("RetryAttempts", 0),
            status >= 400 and status not in EXPECTED_STATUSES,
        )

    def after_call_error(context, **_):
        # no answer at all (connection refused, timeout, TLS failure): an error, method unknown here
        with counters.lock:
            counters.errors += 1

    events = client.meta.events
    events.register("before-call.s3", before_call)
    events.register("after-call.s3", after_call)
    events.register("after-call-error.s3", after_call_error)


@dataclass
class Telemetry:
    """What the telemetry file holds."""

    methods: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METHODS, 0))
    per_minute: dict[int, int] = field(default_factory=dict)
    uploaded: int = 0
    downloaded: int = 0
    errors: int = 0
    retries: int = 0
    stored_objects: int = 0
    stored_bytes: int = 0
    #: Unix time of the last counter reset
    since: float = field(default_factory=time.time)
    #: first minute of the last excursion above the threshold already reported
    alerted_excursion: int | None = None

    @property
    def requests(self) -> int:
        return sum(self.methods.values())

    def to_json(self) -> dict:
        return {
            "version": FORMAT_VERSION,
            "methods": self.methods,
            "per-minute": {str(minute): count for minute, count in sorted(self.per_minute.items())},
            "uploaded": self.uploaded,
            "downloaded": self.downloaded,
            "errors": self.errors,
            "retries": self.retries,
            "stored-objects": self.stored_objects,
            "stored-bytes": self.stored_bytes,
            "since": self.since,
            "alerted-excursion": self.alerted_excursion,
        }

    @classmethod
    def from_json(cls, value: dict) -> "Telemetry":
        methods = dict.fromkeys(METHODS, 0)
        methods.update(value.get("methods", {}))
        return cls(
            methods,
            {int(minute): count for minute, count in value.get("per-minute", {}).items()},
            value.get("uploaded", 0),
            value.get("downloaded", 0),
            value.get("errors", 0),
            value.get("retries", 0),
            value.get("stored-objects", 0),
            value.get("stored-bytes", 0),
            value.get("since", time.time()),
            value.get("alerted-excursion"),
        )


class TelemetryFile:
    """The counters of one datastore on disk; every change is a locked read-modify-write, so
    several processes using one datastore add up."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def _locked(self):
        make_private_dirs(self.path.parent)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def load(self) -> Telemetry:
        try:
            return Telemetry.from_json(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return Telemetry()

    def _save(self, telemetry: Telemetry) -> None:
        atomic_write(self.path, json.dumps(telemetry.to_json()).encode(), sync=False)

    def update(self, change) -> Telemetry:
        """Apply ``change(telemetry)`` under the lock and save; the result."""
        fd = self._locked()
        try:
            telemetry = self.load()
            change(telemetry)
            self._save(telemetry)
            return telemetry
        finally:
            os.close(fd)

    def add(self, counters: RequestCounters) -> Telemetry:
        taken = counters.take()

        def merge(telemetry: Telemetry) -> None:
            for method, count in taken.methods.items():
                telemetry.methods[method] = telemetry.methods.get(method, 0) + count
            for minute, count in taken.per_minute.items():
                telemetry.per_minute[minute] = telemetry.per_minute.get(minute, 0) + count
            oldest = int(time.time() // 60) - KEPT_MINUTES
            telemetry.per_minute = {m: c for m, c in telemetry.per_minute.items() if m > oldest}
            telemetry.uploaded += taken.uploaded
            telemetry.downloaded += taken.downloaded
            telemetry.errors += taken.errors
            telemetry.retries += taken.retries
            telemetry.stored_objects += taken.objects_added
            telemetry.stored_bytes += taken.bytes_added

        return self.update(merge)

    def set_stored(self, objects: int, size: int) -> None:
        """Record the stored objects and bytes a full listing of the bucket counted."""

        def store(telemetry: Telemetry) -> None:
            telemetry.stored_objects = objects
            telemetry.stored_bytes = size

        self.update(store)

    def reset(self) -> Telemetry:
        """Zero the counters (PBS's counter reset); the stored totals stay. The values before."""
        before = self.load()

        def zero(telemetry: Telemetry) -> None:
            fresh = Telemetry(stored_objects=telemetry.stored_objects, stored_bytes=telemetry.stored_bytes)
            telemetry.__dict__.update(fresh.__dict__)

        self.update(zero)
        return before


@dataclass(frozen=True)
class RateExcursion:
    """Minutes in a row with more requests than the threshold."""

    first_minute: int
    last_minute: int
    peak: int
    threshold: int

    def message(self) -> str:
        start = time.strftime("%Y-%m-%d %H:%M", time.gmtime(self.first_minute * 60))
        return (
            f"S3 request rate above the threshold: {self.peak} requests per minute "
            f"(threshold {self.threshold}) from {start} UTC"
        )


def rate_excursions(telemetry: Telemetry, threshold: int) -> list[RateExcursion]:
    """Every run of consecutive minutes with more than ``threshold`` requests, oldest first."""
    excursions: list[RateExcursion] = []
    for minute in sorted(telemetry.per_minute):
        count = telemetry.per_minute[minute]
        if count <= threshold:
            continue
        last = excursions[-1] if excursions else None
        if last is not None and last.last_minute == minute - 1:
            excursions[-1] = RateExcursion(last.first_minute, minute, max(last.peak, count), threshold)
        else:
            excursions.append(RateExcursion(minute, minute, count, threshold))
    return excursions


def new_rate_excursion(telemetry_file: TelemetryFile, threshold: int) -> RateExcursion | None:
    """The newest excursion above ``threshold`` if it was not reported yet, and mark it
    reported: each excursion is reported once (the hook for warnings and notifications)."""
    found: list[RateExcursion] = []

    def check(telemetry: Telemetry) -> None:
        excursions = rate_excursions(telemetry, threshold)
        if not excursions:
            return
        newest = excursions[-1]
        if telemetry.alerted_excursion is not None and telemetry.alerted_excursion >= newest.first_minute:
            return
        telemetry.alerted_excursion = newest.first_minute
        found.append(newest)

    telemetry_file.update(check)
    return found[0] if found else None


def prometheus_text(telemetry: Telemetry, labels: dict[str, str]) -> str:
    """The node_exporter textfile collector format."""
    label_text = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    now_minute = int(time.time() // 60)
    last_minute = telemetry.per_minute.get(now_minute - 1, 0)
    lines = [
        "# HELP tapefs_s3_requests_total S3 requests by method.",
        "# TYPE tapefs_s3_requests_total counter",
    ]
    for method in METHODS:
        lines.append(f'tapefs_s3_requests_total{{{label_text},method="{method}"}} {telemetry.methods.get(method, 0)}')
    gauges = [
        ("tapefs_s3_uploaded_bytes_total", "counter", "Bytes sent in request bodies.", telemetry.uploaded),
        ("tapefs_s3_downloaded_bytes_total", "counter", "Bytes received in GET bodies (egress).", telemetry.downloaded),
        ("tapefs_s3_errors_total", "counter", "Requests that failed.", telemetry.errors),
        ("tapefs_s3_retries_total", "counter", "Retried request attempts.", telemetry.retries),
        ("tapefs_s3_stored_objects", "gauge", "Objects stored in the bucket.", telemetry.stored_objects),
        ("tapefs_s3_stored_bytes", "gauge", "Bytes stored in the bucket.", telemetry.stored_bytes),
        ("tapefs_s3_requests_last_minute", "gauge", "Requests in the last full minute.", last_minute),
    ]
    for name, kind, text, value in gauges:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name}{{{label_text}}} {value}"]
    return "\n".join(lines) + "\n"
