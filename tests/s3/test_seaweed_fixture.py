"""The SeaweedFS fixture itself: a real S3 server that keeps SigV4 identities apart."""

import pytest
from botocore.exceptions import ClientError

from tests.helpers.seaweedfs import READ_ONLY


def test_server_stores_objects_and_honours_if_none_match(seaweed_server, s3_bucket):
    client = seaweed_server.client()
    client.put_object(Bucket=s3_bucket, Key="a", Body=b"data", IfNoneMatch="*")
    with pytest.raises(ClientError) as raised:
        client.put_object(Bucket=s3_bucket, Key="a", Body=b"data", IfNoneMatch="*")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.get_object(Bucket=s3_bucket, Key="a")["Body"].read() == b"data"


def test_read_only_identity_may_not_write(seaweed_server, s3_bucket):
    with pytest.raises(ClientError) as raised:
        seaweed_server.client(READ_ONLY).put_object(Bucket=s3_bucket, Key="a", Body=b"x")
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
