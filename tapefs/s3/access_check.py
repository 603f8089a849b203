"""``tapefs s3 check``: probe a bucket with each request a datastore needs, as PBS's check does,
and name the permission that is missing."""

from dataclasses import dataclass

from tapefs.s3.client import S3Client
from tapefs.s3.errors import S3AccessDenied, S3BadCredentials, S3Error

TEST_OBJECT = ".s3-client-test"


@dataclass(frozen=True)
class CheckStep:
    request: str
    permission: str
    ok: bool
    error: str | None = None


def check_access(client: S3Client) -> list[CheckStep]:
    """HEAD bucket, PUT, GET, LIST, DELETE of ``<prefix>/.s3-client-test``; stops at a
    failure that is not a refused permission (an unreachable endpoint fails them all)."""
    probes = [
        ("HEAD bucket", "s3:ListBucket", client.head_bucket),
        ("PUT object", "s3:PutObject", lambda: client.put_object(TEST_OBJECT, b"tapefs s3 check\n")),
        ("GET object", "s3:GetObject", lambda: client.get_object(TEST_OBJECT)),
        ("LIST objects", "s3:ListBucket", lambda: next(iter(client.list_objects(TEST_OBJECT)), None)),
        ("DELETE object", "s3:DeleteObject", lambda: client.delete_object(TEST_OBJECT)),
    ]
    steps = []
    for request, permission, probe in probes:
        try:
            probe()
            steps.append(CheckStep(request, permission, True))
        except S3BadCredentials:
            raise  # no permission can be judged with credentials the endpoint refuses
        except S3AccessDenied as error:
            steps.append(CheckStep(request, permission, False, str(error)))
        except S3Error:
            raise
    return steps


def missing_permissions(steps: list[CheckStep]) -> list[str]:
    return sorted({step.permission for step in steps if not step.ok})
