"""Failures talking to an S3 endpoint, sorted into tapefs's kinds of failure."""

from tapefs.errors import Busy, DataDamaged, DeviceFailure, InvalidInput, NotFound, TapefsError


class S3Error(TapefsError):
    """Any failure of an S3 request or of the S3 configuration."""


class S3ConfigError(S3Error, InvalidInput):
    """A bad endpoint definition or option."""


class S3UnknownEndpoint(S3Error, NotFound):
    """No endpoint of that id in s3.cfg."""


class S3NotFound(S3Error, NotFound):
    """A missing bucket or object."""


class S3AccessDenied(S3Error, InvalidInput):
    """Wrong credentials or a bucket policy that forbids the request (HTTP 403)."""


class S3BadCredentials(S3AccessDenied):
    """The endpoint does not know the access key, or the secret key does not sign right."""


class S3Unreachable(S3Error, DeviceFailure):
    """The endpoint does not answer, answers with a server error after the retries, or fails TLS."""


class S3InUse(S3Error, Busy):
    """The bucket's datastore prefix carries another host's ``.in-use`` marker."""


class S3ColdObject(S3Error, DataDamaged):
    """An object a lifecycle rule moved to an archive storage class (GET answers InvalidObjectState)."""
