"""A fake S3-compatible object store over real HTTP on 127.0.0.1: moto's S3 in server mode,
with a control plane.

moto (``moto[server]``) answers the S3 REST protocol as AWS documents it: SigV4-signed
requests, path-style addressing, ``PutObject``/``HeadObject``/``GetObject`` with ``Range``
(206 and ``Content-Range``), multipart uploads (with S3's 5 MiB minimum part size), S3's XML
errors (``NoSuchKey``, ``NoSuchBucket``). It runs in a thread of this process, in werkzeug's
threaded server, like moto's ``ThreadedMotoServer``; the server is assembled here from the
same moto parts (``DomainDispatcherApplication``, ``MotoRequestHandler``) because an outage
has to look like one: ``ThreadedMotoServer.stop()`` leaves the listening socket open and its
keep-alive connections served, so a client would hang, or still get answers, instead of being
refused.

Control plane: ``set_available(False)`` (down: the port refuses connections and open ones are
cut; ``True``: back on the same port with the same buckets and objects), ``fail_with(status,
code)`` (every request answered with that S3 error, e.g. 503 ``SlowDown``; ``None`` to stop),
``requests()`` (method, path and ``Range`` of each request ctibridge made;
``clear_requests()``), ``reset()``, ``create_bucket()``, ``objects(bucket)``, ``delete_object()``,
``uploads(bucket)`` (multipart uploads in progress) and ``settings(bucket)`` (a
``[recordings]`` section pointing at the fake). The
control plane signs in as :data:`CONTROL_KEY`, which ``requests()`` leaves out and
``fail_with`` lets through.

The ``fake_s3`` fixture gives each test its own server (moto's state is reset when it stops);
a test module imports ``fake_s3_fixture`` to use it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from ctibridge.config import RecordingsSettings

__all__ = ["ACCESS_KEY", "CONTROL_KEY", "REGION", "FakeS3", "S3Request", "fake_s3_fixture"]

ACCESS_KEY = "AKIACTIBRIDGETEST"
SECRET_KEY = "fake-secret-key"
CONTROL_KEY = "AKIAFAKES3CONTROL"
REGION = "eu-west-2"

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class S3Request:
    method: str
    path: str
    query: str
    range: str | None


class _Gate:
    """WSGI middleware in front of moto: logs requests, and answers errors when told to."""

    def __init__(self, app: DomainDispatcherApplication) -> None:
        self.app = app
        self.log: list[S3Request] = []
        self.failure: tuple[int, str] | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        control = f"Credential={CONTROL_KEY}/" in environ.get("HTTP_AUTHORIZATION", "")
        if not control:
            with self._lock:
                self.log.append(
                    S3Request(
                        environ["REQUEST_METHOD"],
                        environ.get("PATH_INFO", ""),
                        environ.get("QUERY_STRING", ""),
                        environ.get("HTTP_RANGE"),
                    )
                )
        failure = self.failure
        if failure is None or control:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        return _error(environ, start_response, *failure)


def _error(environ: Environ, start_response: StartResponse, status: int, code: str) -> list[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>fake S3 told to fail</Message>"
        f"<RequestId>{secrets.token_hex(8)}</RequestId></Error>"
    ).encode()
    reason = {500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
    headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
    start_response(f"{status} {reason}", headers)
    return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]


class FakeS3:
    def __init__(self) -> None:
        self._gate = _Gate(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.port = 0

    def __enter__(self) -> FakeS3:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.reset()
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- the server ---------------------------------------------------------------------------

    def start(self) -> None:
        assert self._server is None, "already running"
        self._server = make_server(
            "127.0.0.1", self.port, self._gate, threaded=True, request_handler=self._handler()
        )
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"fake-s3-{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Close the port and cut every open connection."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        assert self._thread is not None
        self._thread.join(timeout=10)
        self._server = self._thread = None

    def _handler(self) -> type[MotoRequestHandler]:
        connections, lock = self._connections, self._lock

        class Handler(MotoRequestHandler):
            def setup(self) -> None:
                super().setup()
                with lock:
                    connections.add(self.connection)

            def finish(self) -> None:
                with lock:
                    connections.discard(self.connection)
                super().finish()

            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                pass  # requests() has them

        return Handler

    # -- control plane ------------------------------------------------------------------------

    def set_available(self, available: bool) -> None:
        if available and self._server is None:
            self.start()
        elif not available:
            self.stop()

    def fail_with(self, status: int | None, code: str = "SlowDown") -> None:
        """Answer every request with S3 error ``code`` and HTTP ``status`` (None: stop)."""
        self._gate.failure = None if status is None else (status, code)

    def requests(self) -> list[S3Request]:
        return list(self._gate.log)

    def clear_requests(self) -> None:
        self._gate.log.clear()

    def reset(self) -> None:
        """Forget every bucket, object and request; no failure."""
        self._gate.log.clear()
        self._gate.failure = None
        if self._server is not None:
            httpx.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()

    def create_bucket(self, name: str | None = None) -> str:
        bucket = name or f"rec-{secrets.token_hex(6)}"
        self._control().create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        return bucket

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object in ``bucket``, by name."""
        s3 = self._control()
        listing = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {
            o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing
        }

    def delete_object(self, bucket: str, name: str) -> None:
        self._control().delete_object(Bucket=bucket, Key=name)

    def content_type(self, bucket: str, name: str) -> str:
        return str(self._control().head_object(Bucket=bucket, Key=name)["ContentType"])

    def uploads(self, bucket: str) -> list[str]:
        """Object names of the multipart uploads started and neither completed nor aborted."""
        listing = self._control().list_multipart_uploads(Bucket=bucket)
        return [u["Key"] for u in listing.get("Uploads", [])]

    def settings(self, bucket: str, **overrides: Any) -> RecordingsSettings:
        """A ``[recordings]`` section keeping recordings in ``bucket`` of this fake."""
        return RecordingsSettings(**{**self.section(bucket), **overrides})

    def section(self, bucket: str) -> dict[str, Any]:
        """The same as a ``[recordings]`` mapping, for ``config.load`` overrides."""
        return {
            "store": "s3",
            "s3_bucket": bucket,
            "s3_region": REGION,
            "s3_endpoint_url": self.url,
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
            "s3_path_style": True,
            "s3_max_attempts": 1,
            "request_timeout": 5.0,
        }

    def _control(self) -> Any:
        return boto3.client(
            "s3",
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=CONTROL_KEY,
            aws_secret_access_key=SECRET_KEY,
        )


@pytest.fixture(name="fake_s3")
def fake_s3_fixture() -> Iterator[FakeS3]:
    """An S3-compatible server of this test's own (moto state reset afterwards)."""
    with FakeS3() as server:
        yield server
