"""Real servers the tests start on loopback: an S3-compatible object store and a Redis broker.

The S3 server is moto's standalone server (`moto_server`, from `moto[server]` in requirements.lock),
a separate process speaking HTTP on 127.0.0.1, not an in-process mock of boto calls. Redis is
Debian's `redis-server` (.ci/system-packages installs it). A missing server fails the test that
needs it, with a message saying what to install; nothing is skipped.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables botocore (and so s3fs) reads; nothing Lupa-specific."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "eu-north-1",
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def lake_url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"

    def keys(self, prefix: str = "") -> list[str]:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="eu-north-1", **self._credentials)
        keys: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return sorted(keys)

    @property
    def _credentials(self) -> dict[str, str]:
        return {"aws_access_key_id": self.access_key, "aws_secret_access_key": self.secret_key}


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on a free loopback port, with one bucket; stopped afterwards."""
    binary = VENV_BIN / "moto_server"
    if not binary.exists():
        pytest.fail(f"{binary} not found: install requirements.lock (moto[server])", pytrace=False)
    port = free_port()
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"moto_server did not start:\n{log.read().decode()[-2000:]}", pytrace=False)
                time.sleep(0.2)
        server = S3Server(endpoint, "lupa-lake", secrets.token_hex(8), secrets.token_hex(20))
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name="eu-north-1", **server._credentials).create_bucket(
            Bucket=server.bucket, CreateBucketConfiguration={"LocationConstraint": "eu-north-1"}
        )
        yield server
    finally:
        _stop(process)
        log.close()


@dataclass(frozen=True)
class RedisServer:
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def redis_binary() -> str:
    found = os.environ.get("LUPA_TEST_REDIS_SERVER") or shutil.which("redis-server")
    if not found:
        pytest.fail(
            "redis-server not found. Install Debian's `redis-server` package (.ci/system-packages does), "
            "or point LUPA_TEST_REDIS_SERVER at the binary.",
            pytrace=False,
        )
    return found


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A throwaway Redis on loopback: no persistence, no config file, stopped afterwards."""
    binary = redis_binary()
    root = Path(tempfile.mkdtemp(prefix="lupa-redis-"))
    port = free_port()
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("redis-server did not start", pytrace=False)
            time.sleep(0.1)
        yield RedisServer(port)
    finally:
        _stop(process)
        shutil.rmtree(root, ignore_errors=True)
