"""A fake Azure Blob Storage account on loopback: where azure-ai-ml uploads a model folder for
``ml_client.models.create_or_update(Model(path=folder))`` (the datastore that points here:
``tests/azure/fake_datastore.py``).

azure-ai-ml builds the account URL from the cloud's storage suffix, ``https://{account}.blob.{suffix}``,
a name loopback does not resolve. The storage client honours ``HTTPS_PROXY`` (azure-core's default
transport reads the environment), so the fake is an HTTP proxy that answers ``CONNECT`` for any
host by serving HTTPS itself inside the tunnel, with a certificate for ``*.blob.{suffix}`` from the
tests' CA. The hosts asked for are recorded.

It serves Get Blob Properties (HEAD), Get Blob, Put Blob (block blobs, ``If-None-Match: *``,
``Content-MD5`` checked), Put Block and Put Block List (the SDK's path above 64 MiB) and Set Blob
Metadata (``comp=metadata``); other operations answer 501. Every request must carry
``x-ms-version`` and either a SharedKey signature computed with the account key (checked as Azure
documents it: verb, standard headers, canonicalized ``x-ms-*`` headers and resource) or a bearer
token, which is refused (403 ``AuthorizationPermissionMismatch``) unless listed in
``data_contributors`` (a principal with 'Storage Blob Data Contributor'). Errors are Storage's XML
bodies with ``x-ms-error-code`` (none on HEAD). ``fail`` scripts a fault (status and error code)
for matching requests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import socket
import ssl
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.etree import ElementTree

from tests.azure.tls import TestPki

ACCOUNT = "amlrolloutws1store"
CONTAINER = "azureml-blobstore-5b0d1a2e-7c44-4f0e-9a53-1f0c2d9e8a11"
ACCOUNT_KEY = base64.b64encode(b"fake storage account key, for the tests only!!").decode()
STORAGE_SUFFIX = "core.loopback.test"
"""The storage suffix of ``FakeAzure``'s cloud metadata: blob hosts are ``{account}.blob.core.loopback.test``."""
DATASTORE = "workspaceblobstore"
MISSING_HEADER = "An HTTP header that's mandatory for this request is not specified."
MD5_MISMATCH = "The MD5 value specified in the request did not match with the MD5 value calculated by the server."
_SIGNED = ("content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
           "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range")

StorageReply = tuple[int, dict[str, str], bytes]


@dataclass
class Blob:
    """A stored block blob."""

    data: bytes
    metadata: dict[str, str]
    etag: str
    last_modified: datetime
    content_md5: str                              # "" when not known (a Put Block List without one)


@dataclass
class StorageRequest:
    """One request as the blob service received it (``path``: URL path, decoded, without the leading '/')."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    length: int                                   # of the body (the blobs keep the bytes)


@dataclass
class StorageFault:
    method: str
    path: str
    status: int
    code: str
    message: str
    times: int | None = 1


def string_to_sign(method: str, raw_path: str, query: dict[str, str], headers: dict[str, str]) -> str:
    """Shared Key's string-to-sign for the Blob service (version 2009-09-19 and later), as documented in
    "Authorize with Shared Key": verb, the standard headers (Content-Length empty when 0), the
    ``x-ms-*`` headers sorted, then ``/{account}{path}`` and the query parameters sorted by name."""
    standard = [headers.get(name, "") for name in _SIGNED]
    if standard[2] == "0":
        standard[2] = ""
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in sorted(headers) if name.startswith("x-ms-"))
    resource = f"/{ACCOUNT}{raw_path}" + "".join(f"\n{name.lower()}:{value}" for name, value in sorted(query.items()))
    return "\n".join([method, *standard]) + "\n" + canonical_headers + resource


def _http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


class FakeBlobStorage:
    """The fake storage account ``ACCOUNT`` with one container ``CONTAINER``. Start once; ``reset`` between tests."""

    def __init__(self, pki: TestPki) -> None:
        self.pki = pki
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.reset()

    @property
    def proxy_url(self) -> str:
        """``HTTPS_PROXY`` for the storage client."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeBlobStorage:
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(self.pki.server_cert, self.pki.server_key)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _proxy_handler_for(self))
        server.daemon_threads = True
        server.handle_error = lambda request, address: None   # type: ignore[method-assign]  # clients hang up
        self._server = server
        threading.Thread(target=server.serve_forever, name="fake-blob", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def reset(self) -> None:
        """Forget every blob, fault, tunnel and recorded request."""
        with self._lock:
            self.blobs: dict[str, Blob] = {}             # blob name -> blob
            self.requests: list[StorageRequest] = []
            self.faults: list[StorageFault] = []
            self.tunnels: list[str] = []                  # CONNECT targets, host:port
            self.data_contributors: set[str] = set()      # bearer tokens whose principal has a blob data role
            self.uncommitted: dict[str, dict[str, bytes]] = {}   # blob name -> block id -> bytes

    def fail(self, method: str, path: str, status: int, code: str, message: str, times: int | None = 1) -> None:
        """Answer requests matching ``method`` and ``path`` (a regex searched in the decoded path) with an error."""
        with self._lock:
            self.faults.append(StorageFault(method, path, status, code, message, times))

    def calls(self, method: str | None = None) -> list[StorageRequest]:
        with self._lock:
            return [r for r in self.requests if method is None or r.method == method]

    def contents(self) -> dict[str, bytes]:
        """Every blob's bytes by name."""
        with self._lock:
            return {name: blob.data for name, blob in self.blobs.items()}

    # ---- serving ---------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> StorageReply:
        split = urlsplit(target)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        path = unquote(split.path).lstrip("/")
        with self._lock:
            self.requests.append(StorageRequest(method, path, query, headers, len(body)))
            refused = self._refusal(method, split.path, query, headers)
            if refused is not None:
                return refused
            for fault in self.faults:
                if fault.method == method and re.search(fault.path, path) and (fault.times is None or fault.times > 0):
                    if fault.times is not None:
                        fault.times -= 1
                    return self._error(fault.status, fault.code, fault.message)
            container, _, name = path.partition("/")
            if container != CONTAINER:
                return self._error(404, "ContainerNotFound", "The specified container does not exist.")
            if not name or set(query) - {"comp", "timeout", "blockid"}:
                return self._error(501, "NotImplemented", f"the fake blob service does not serve {method} {target}")
            comp = query.get("comp")
            if method in ("HEAD", "GET") and comp is None:
                return self._read(name, method == "GET")
            if method == "PUT" and comp is None:
                return self._put_blob(name, headers, body)
            if method == "PUT" and comp == "metadata":
                return self._set_metadata(name, headers)
            if method == "PUT" and comp == "block" and "blockid" in query:
                return self._put_block(name, query["blockid"], headers, body)
            if method == "PUT" and comp == "blocklist":
                return self._put_block_list(name, headers, body)
            return self._error(501, "NotImplemented", f"the fake blob service does not serve {method} {target}")

    def _refusal(self, method: str, raw_path: str, query: dict[str, str], headers: dict[str, str]) -> StorageReply | None:
        if "x-ms-version" not in headers:
            return self._error(400, "MissingRequiredHeader", MISSING_HEADER)
        authorization = headers.get("authorization")
        if authorization is None:
            return self._error(401, "NoAuthenticationInformation", "Server failed to authenticate the request.")
        if authorization.startswith("Bearer "):      # Microsoft Entra: the token's principal needs a data role
            if authorization[len("Bearer "):] not in self.data_contributors:
                return self._error(403, "AuthorizationPermissionMismatch", "This request is not authorized to "
                                   "perform this operation using this permission.")
            return None
        expected = base64.b64encode(hmac.new(base64.b64decode(ACCOUNT_KEY),
                                             string_to_sign(method, raw_path, query, headers).encode(),
                                             hashlib.sha256).digest()).decode()
        if authorization != f"SharedKey {ACCOUNT}:{expected}":
            return self._error(403, "AuthenticationFailed", "Server failed to authenticate the request. Make sure "
                               "the value of Authorization header is formed correctly including the signature.")
        return None

    def _error(self, status: int, code: str, message: str) -> StorageReply:
        request_id = str(uuid.uuid4())
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
        body = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}\n'
                f"RequestId:{request_id}\nTime:{now}</Message></Error>").encode()
        return status, {"Content-Type": "application/xml", "x-ms-error-code": code, "x-ms-request-id": request_id}, body

    def _properties(self, blob: Blob) -> dict[str, str]:
        return {"ETag": blob.etag, "Last-Modified": _http_date(blob.last_modified)}

    def _read(self, name: str, with_body: bool) -> StorageReply:
        blob = self.blobs.get(name)
        if blob is None:
            return self._error(404, "BlobNotFound", "The specified blob does not exist.")
        headers = {**self._properties(blob), "Content-Type": "application/octet-stream",
                   **({"Content-MD5": blob.content_md5} if blob.content_md5 else {}),
                   "x-ms-blob-type": "BlockBlob", "x-ms-lease-state": "available", "x-ms-lease-status": "unlocked",
                   "x-ms-server-encrypted": "true", "x-ms-creation-time": _http_date(blob.last_modified),
                   "Accept-Ranges": "bytes", "Content-Length": str(len(blob.data)),
                   **{f"x-ms-meta-{key}": value for key, value in blob.metadata.items()}}
        return 200, headers, blob.data if with_body else b""

    def _put_blob(self, name: str, headers: dict[str, str], body: bytes) -> StorageReply:
        if headers.get("x-ms-blob-type") != "BlockBlob":
            return self._error(400, "MissingRequiredHeader", MISSING_HEADER)
        if "content-md5" in headers and headers["content-md5"] != _md5(body):
            return self._error(400, "Md5Mismatch", MD5_MISMATCH)
        return self._commit(name, headers, body, _md5(body), body)

    def _commit(self, name: str, headers: dict[str, str], data: bytes, content_md5: str, request: bytes) -> StorageReply:
        """Store ``data`` as blob ``name`` unless ``If-None-Match: *`` finds one. The answer's
        Content-MD5 is the request body's (for Put Block List: the list's, not the blob's)."""
        if headers.get("if-none-match") == "*" and name in self.blobs:
            return self._error(409, "BlobAlreadyExists", "The specified blob already exists.")
        blob = Blob(data, _metadata(headers), f'"0x{uuid.uuid4().hex[:15].upper()}"', datetime.now(UTC), content_md5)
        self.blobs[name] = blob
        self.uncommitted.pop(name, None)
        return 201, {**self._properties(blob), "Content-MD5": _md5(request), "x-ms-request-server-encrypted": "true"}, b""

    def _put_block(self, name: str, block_id: str, headers: dict[str, str], body: bytes) -> StorageReply:
        """Put Block: kept uncommitted under its id (base64, every id of a blob the same length)."""
        blocks = self.uncommitted.setdefault(name, {})
        try:
            base64.b64decode(block_id, validate=True)
        except ValueError:
            return self._error(400, "InvalidQueryParameterValue", "Value for one of the query parameters specified "
                               "in the request URI is invalid.")
        if any(len(other) != len(block_id) for other in blocks):
            return self._error(400, "InvalidBlobOrBlock", "The specified blob or block content is invalid.")
        if "content-md5" in headers and headers["content-md5"] != _md5(body):
            return self._error(400, "Md5Mismatch", MD5_MISMATCH)
        blocks[block_id] = body
        return 201, {"Content-MD5": _md5(body), "x-ms-request-server-encrypted": "true"}, b""

    def _put_block_list(self, name: str, headers: dict[str, str], body: bytes) -> StorageReply:
        """Put Block List: the blob becomes the listed uncommitted blocks in order (``Latest`` or
        ``Uncommitted``; ``Committed`` blocks are not kept by this fake and are refused as unknown)."""
        try:
            listed = [(item.tag, item.text or "") for item in ElementTree.fromstring(body)]
        except ElementTree.ParseError:
            return self._error(400, "InvalidXmlDocument", "XML specified is not syntactically valid.")
        blocks = self.uncommitted.get(name, {})
        if any(tag not in ("Latest", "Uncommitted") or block_id not in blocks for tag, block_id in listed):
            return self._error(400, "InvalidBlockList", "The specified block list is invalid.")
        # x-ms-blob-content-md5 is stored, not checked: each block's MD5 was (Azure does the same)
        return self._commit(name, headers, b"".join(blocks[block_id] for _, block_id in listed),
                            headers.get("x-ms-blob-content-md5", ""), body)

    def _set_metadata(self, name: str, headers: dict[str, str]) -> StorageReply:
        blob = self.blobs.get(name)
        if blob is None:
            return self._error(404, "BlobNotFound", "The specified blob does not exist.")
        blob.metadata = _metadata(headers)
        blob.etag = f'"0x{uuid.uuid4().hex[:15].upper()}"'
        blob.last_modified = datetime.now(UTC)
        return 200, {**self._properties(blob), "x-ms-request-server-encrypted": "true"}, b""


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()   # noqa: S324 - Storage's own checksum


def _metadata(headers: dict[str, str]) -> dict[str, str]:
    return {name[len("x-ms-meta-"):]: value for name, value in headers.items() if name.startswith("x-ms-meta-")}


def _blob_handler_for(fake: FakeBlobStorage) -> type[BaseHTTPRequestHandler]:
    class BlobHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = fake.handle(self.command, self.path, headers, body)
            self.send_response(status)
            sent = {k.lower() for k in extra}
            if "content-length" not in sent:
                self.send_header("Content-Length", str(len(payload)))
            self.send_header("Server", "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0")
            if "x-ms-request-id" not in sent:
                self.send_header("x-ms-request-id", str(uuid.uuid4()))
            self.send_header("x-ms-version", headers.get("x-ms-version", ""))
            if "x-ms-client-request-id" in headers:
                self.send_header("x-ms-client-request-id", headers["x-ms-client-request-id"])
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_HEAD = do_PUT = do_DELETE = do_POST = _serve

    return BlobHandler


def _proxy_handler_for(fake: FakeBlobStorage) -> type[BaseHTTPRequestHandler]:
    blob_handler = _blob_handler_for(fake)

    class ProxyHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def do_CONNECT(self) -> None:
            """Open the tunnel, then be the blob service inside it (TLS, then HTTP) until the client hangs up."""
            with fake._lock:
                fake.tunnels.append(self.path)
            self.send_response(200, "Connection Established")
            self.end_headers()
            self.close_connection = True
            try:
                tls = fake._tls.wrap_socket(self.connection, server_side=True)
            except OSError:
                return
            with tls:
                tls.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    blob_handler(tls, self.client_address, self.server)
                except OSError:
                    return

    return ProxyHandler
