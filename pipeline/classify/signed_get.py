"""Image GETs signed once with SigV4 and sent on a pooled urllib3 connection; boto3 for the rest.

Why: a boto3 `get_object` spends ~2 ms of CPU per call in botocore's machinery (event hooks,
endpoint rules, request building, response parsing) on top of the HTTP exchange: ~20 % of a
1-vCPU worker's time per image (BENCHMARKS.md "Classify worker"). This path signs the GET with
botocore's own `S3SigV4Auth` and sends it through urllib3, the client botocore itself uses.

What it keeps, and how — the lean path only ever serves the plain success; everything else is
the SDK's, through `fetch_image`, so nothing about errors, retries or routing is re-implemented:

- **Where to send it**: learned, per bucket, from one real boto3 GET of that bucket (a
  `before-send` hook sees the request botocore built: URL, region and service of the signature,
  signed headers). So the endpoint rules, virtual-host or path style, a custom endpoint and the
  region are botocore's own answer. A bucket whose request signed anything this path does not
  reproduce (SSE-C, requester pays, S3 Express sessions, SigV4a, anonymous) is never learned: it
  stays on boto3.
- **Credentials**: the client's own credential object (refreshed by `get_frozen_credentials`),
  read from its request signer: botocore has no public accessor for it. Should a botocore
  upgrade drop that attribute, no route is learned and every GET is boto3's (slower, never
  wrong); tests/unit/classify/test_signed_get.py signs with it.
- **Errors**: any status but 200, a transport error, a short body or a checksum the path cannot
  check → the same GET again through boto3, which retries, parses and raises exactly as before
  (`fetch_image` maps it to the same failure record). Throttling, a 5xx or a transport error
  also puts this getter on boto3 alone for `COOL_OFF_S`, so the adaptive retry mode's token
  bucket paces every GET while S3 sheds load (and a broken network path is not tried per GET).
- **Transport**: no proxy (with one configured, every GET is boto3's); TLS verified against
  botocore's CA bundle, or ``AWS_CA_BUNDLE``; the client's connect and read timeouts; urllib3
  does no retries or redirects of its own (a redirect is a non-200: boto3's region redirector).
- **Integrity**: when botocore asked for response checksums (`x-amz-checksum-mode`), this path
  asks too and verifies CRC32, SHA-1 or SHA-256 itself; another algorithm → boto3 checks it.
- **Tracing**: a traced process records the GET as the same `aws` subsegment the SDK's botocore
  patch would, with the trace header injected (`pipeline.observe.tracing.aws_call`).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import threading
import time
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import urllib3
from botocore import httpchecksum
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.httpsession import get_cert_path

from pipeline.classify.fetch import S3Client, fetch_image, too_large
from pipeline.observe.tracing import aws_call

logger = logging.getLogger(__name__)

COOL_OFF_S = 30.0
"""After a throttle, a 5xx or a transport error on the lean path, every GET goes through boto3
this long."""

_SCOPE = re.compile(r"^AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request,")
_SIGNED = re.compile(r"SignedHeaders=([^,]+)")
_REPRODUCED = frozenset(
    {"host", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token", "x-amz-checksum-mode"}
)
"""Headers this path signs itself: a learned request that signed any other stays on boto3."""
_CHECKSUM_MODE = "x-amz-checksum-mode"
_CHECKSUMS = tuple(
    algorithm
    for algorithm in httpchecksum._ALGORITHMS_PRIORITY_LIST  # botocore is locked
    if algorithm in httpchecksum._SUPPORTED_CHECKSUM_ALGORITHMS
)
"""The response checksums botocore validates, in its order: the first one present, among those it
can compute (crc32, sha1, sha256 and sha512 without `awscrt`). S3 gives new objects a CRC64NVME
checksum, which botocore without `awscrt` leaves unchecked: counting it here sent every such
object's GET through boto3 again, each image read twice."""


class ImageGetter(Protocol):
    """Reads one image object's bytes within a byte limit (errors as `fetch_image` raises)."""

    def get(self, bucket: str, key: str, *, max_bytes: int, version_id: str | None) -> bytes: ...  # noqa: D102


@dataclass(frozen=True, slots=True)
class SdkGetter:
    """Every GET through boto3 (`fetch_image`): the reference path."""

    client: S3Client

    def get(self, bucket: str, key: str, *, max_bytes: int, version_id: str | None) -> bytes:
        """See `fetch_image`."""
        return fetch_image(self.client, bucket, key, max_bytes=max_bytes, version_id=version_id)


@dataclass(frozen=True, slots=True)
class Route:
    """How botocore sent a GET to one bucket: the URL up to the key and the signature's scope."""

    prefix: str
    region: str
    service: str
    checksum_mode: str | None


def learn_route(url: str, headers: Any, key: str) -> Route | None:
    """The bucket's route from a GetObject request botocore built for `key`, or None.

    None when the request is not one this path reproduces exactly (see the module docstring).
    """
    authorization = headers.get("Authorization") or ""
    if isinstance(authorization, bytes):
        authorization = authorization.decode()
    scope, signed = _SCOPE.match(authorization), _SIGNED.search(authorization)
    if scope is None or signed is None or not set(signed.group(1).split(";")) <= _REPRODUCED:
        return None
    path = urlsplit(url).path
    quoted = quote(key, safe="/~")
    if not path.endswith(quoted):
        return None
    base = url.split("?", 1)[0]
    mode = headers.get(_CHECKSUM_MODE)
    return Route(
        prefix=base[: len(base) - len(quoted)],
        region=scope.group(1),
        service=scope.group(2),
        checksum_mode=mode.decode() if isinstance(mode, bytes) else mode,
    )


def signed_request(
    route: Route, credentials: Any, key: str, version_id: str | None
) -> tuple[str, dict[str, str]]:
    """The URL and SigV4 headers of a GetObject of `key` on `route`, signed now.

    Built as botocore builds it: the key percent-encoded as a greedy URI label, ``versionId`` as
    a query parameter, signed by botocore's `S3SigV4Auth` with frozen `credentials`.
    """
    url = route.prefix + quote(key, safe="/~")
    if version_id:
        url += "?versionId=" + quote(version_id, safe="-._~")
    request = AWSRequest("GET", url)
    if route.checksum_mode:
        request.headers[_CHECKSUM_MODE] = route.checksum_mode
    S3SigV4Auth(credentials, route.service, route.region).add_auth(request)
    return url, dict(request.headers.items())


class SignedGetter:
    """Image GETs on the lean path once a bucket's route is known; boto3 otherwise.

    Thread-safe: the pool's threads share it (routes are written whole, the cool-off is one
    float; a race costs at most one extra GET through boto3).
    """

    def __init__(self, client: S3Client, *, pool_size: int, cool_off_s: float = COOL_OFF_S) -> None:
        self._sdk = SdkGetter(client)
        self._credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
        config = client.meta.config
        self._http = urllib3.PoolManager(
            num_pools=8,
            maxsize=pool_size,
            timeout=urllib3.Timeout(connect=config.connect_timeout, read=config.read_timeout),
            retries=False,
            ca_certs=os.environ.get("AWS_CA_BUNDLE") or get_cert_path(True),
        )
        self._routes: dict[str, Route] = {}
        self._seen = threading.local()
        self._cool_off_s = cool_off_s
        self._sdk_until = 0.0
        # A proxy (the client's or the environment's) is botocore's to use: no lean path then.
        has_proxy = bool(config.proxies or urllib.request.getproxies())
        self._is_usable = self._credentials is not None and not has_proxy
        if self._is_usable:
            client.meta.events.register("before-send.s3.GetObject", self._remember_request)

    def get(self, bucket: str, key: str, *, max_bytes: int, version_id: str | None) -> bytes:
        """The object's bytes; raises what `fetch_image` raises (same codes, same records)."""
        route = self._routes.get(bucket)
        if route is None or time.monotonic() < self._sdk_until:
            return self._through_sdk(bucket, key, max_bytes, version_id)
        data = self._lean(route, bucket, key, max_bytes, version_id)
        if data is None:
            return self._sdk.get(bucket, key, max_bytes=max_bytes, version_id=version_id)
        return data

    def route(self, bucket: str) -> Route | None:
        """The learned route of `bucket` (None: its GETs go through boto3)."""
        return self._routes.get(bucket)

    def _remember_request(self, request: Any, **_: Any) -> None:
        self._seen.request = (request.url, request.headers)

    def _through_sdk(self, bucket: str, key: str, max_bytes: int, version_id: str | None) -> bytes:
        self._seen.request = None
        data = self._sdk.get(bucket, key, max_bytes=max_bytes, version_id=version_id)
        seen = getattr(self._seen, "request", None)
        if self._is_usable and seen is not None and bucket not in self._routes:
            route = learn_route(*seen, key)
            if route is not None:
                self._routes[bucket] = route
                logger.debug("lean GETs for s3://%s via %s", bucket, route.prefix)
        return data

    def _lean(
        self, route: Route, bucket: str, key: str, max_bytes: int, version_id: str | None
    ) -> bytes | None:
        """The GET on the lean path: its bytes, or None for "ask boto3" (see module docstring)."""
        assert self._credentials is not None  # a route is only learned with credentials
        credentials = self._credentials.get_frozen_credentials()
        url, headers = signed_request(route, credentials, key, version_id)
        with aws_call("s3", "GetObject", region=route.region, bucket=bucket, key=key) as call:
            headers.update(call.trace_headers())
            try:
                response = self._http.request(
                    "GET", url, headers=headers, preload_content=False, redirect=False
                )
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                logger.debug("lean GET of s3://%s/%s failed (%s): boto3 retries", bucket, key, exc)
                self._cool_off()
                return None
            call.status(response.status)
            try:
                return self._body(response, bucket, key, max_bytes)
            finally:
                response.release_conn()

    def _cool_off(self) -> None:
        """Send every GET through boto3 (adaptive retries, its pacing) for the cool-off."""
        self._sdk_until = time.monotonic() + self._cool_off_s

    def _body(self, response: Any, bucket: str, key: str, max_bytes: int) -> bytes | None:
        if response.status != 200:  # noqa: PLR2004  # HTTP 200 OK: anything else is boto3's
            if response.status >= 500 or response.status == 429:  # noqa: PLR2004  # slow down
                self._cool_off()
            response.drain_conn()
            return None
        size = int(response.headers.get("Content-Length", -1))
        if size > max_bytes:
            response.close()  # the body stays unread: this connection is not reused
            raise too_large(bucket, key, size, max_bytes)
        try:
            data = response.read(max_bytes + 1)
        except (urllib3.exceptions.HTTPError, OSError):
            return None
        if len(data) > max_bytes:
            response.close()
            raise too_large(bucket, key, len(data), max_bytes)
        if 0 <= size != len(data) or not _checksum_ok(response.headers, data):
            return None
        return data


_DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "crc32": lambda data: zlib.crc32(data).to_bytes(4, "big"),
    "sha1": lambda data: hashlib.sha1(data).digest(),  # S3's checksum, not security
    "sha256": lambda data: hashlib.sha256(data).digest(),
    "sha512": lambda data: hashlib.sha512(data).digest(),
}


def _checksum_ok(headers: Any, data: bytes) -> bool:
    """True when the first checksum botocore would validate matches, or none applies.

    False (boto3 then reads the object and checks it) on a mismatch, or on an algorithm botocore
    validates (with `awscrt`, say) that is computed here neither by zlib nor hashlib. Composite
    (multipart) checksums are skipped, as botocore skips them.
    """
    for algorithm in _CHECKSUMS:
        expected = headers.get(f"x-amz-checksum-{algorithm}")
        if expected is None or "-" in expected:
            continue
        digest = _DIGESTS.get(algorithm)
        return digest is not None and digest(data) == base64.b64decode(expected)
    return True
