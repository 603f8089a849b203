"""S3-compatible object storage: endpoint configuration (``s3.cfg``), a client over boto3 with
PBS's upload rules, the access check, and request telemetry (docs/s3.md)."""
