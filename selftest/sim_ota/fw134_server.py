"""A small stand-in for an ``ecowatt-fw134`` update server (the wire contract of
``ecowatt-fw134-wire.md`` "Firmware over the air"), independent of the device's code: it encrypts
with ``cryptography``'s AES-256-CBC and signs with its PKCS#1 v1.5, serves over a real HTTP/1.1
``http.server`` (kept-alive connections), records every request, and can corrupt, drop or replace
replies so the device's failure paths can be driven."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

CHUNK_SIZE = 2048


@dataclass(frozen=True)
class Fw134Package:
    """One release as the fw134 server serves it: plaintext image, IV, ciphertext, signature."""

    version: str
    image: bytes = field(repr=False)
    iv: bytes
    ciphertext: bytes = field(repr=False)
    signature: bytes = field(repr=False)

    @classmethod
    def build(cls, version: str, image: bytes, *, fota_key: bytes, signing_pem: bytes) -> Fw134Package:
        key = serialization.load_pem_private_key(signing_pem, password=None)
        assert isinstance(key, RSAPrivateKey)
        iv = os.urandom(16)
        padder = padding.PKCS7(128).padder()
        encryptor = Cipher(algorithms.AES(fota_key), modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(padder.update(image) + padder.finalize()) + encryptor.finalize()
        signature = key.sign(image, asym.PKCS1v15(), hashes.SHA256())  # PKCS#1 v1.5 over SHA-256(image)
        return cls(version, image, iv, ciphertext, signature)

    @property
    def total_chunks(self) -> int:
        return -(-len(self.ciphertext) // CHUNK_SIZE)

    def update_info(self, current: str) -> dict[str, Any]:
        return {
            "latest_version": self.version,
            "current_version": current,
            "original_size": len(self.image),
            "encrypted_size": len(self.ciphertext),
            "firmware_size": len(self.image),
            "sha256_hash": hashlib.sha256(self.image).hexdigest(),
            "signature": base64.b64encode(self.signature).decode(),
            "iv": base64.b64encode(self.iv).decode(),
            "chunk_size": CHUNK_SIZE,
            "total_chunks": self.total_chunks,
            "release_notes": f"EcoWatt {self.version}",
        }


@dataclass
class Request:
    """One request as it arrived: method, path (no query), query parameters, JSON body (or None)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    connection: int  # which TCP connection carried it (1, 2, ...)

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Fw134Server:
    """Serves ``package`` to any device id; ``corrupt``/``drop`` chunk indexes, ``info`` field
    overrides of ``update_info`` and ``replies`` (path → (status, raw body)) drive failures."""

    package: Fw134Package
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    corrupt: set[int] = field(default_factory=set)
    drop: dict[int, int] = field(default_factory=dict)  # chunk -> times to cut the connection mid-body
    info: dict[str, Any] = field(default_factory=dict)
    replies: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    connections: int = 0
    sessions: set[tuple[str, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def routes(self) -> list[str]:
        return [r.route for r in self.requests]

    def answer(self, request: Request) -> tuple[int, bytes] | None:
        """The reply to *request*: (status, body), or None to cut the connection mid-reply."""
        with self.lock:
            self.requests.append(request)
        if request.path in self.replies:
            return self.replies[request.path]
        parts = request.path.strip("/").split("/")
        if request.route.startswith("GET /ota/check/"):
            return self._check(parts[-1], request.query.get("version", ""))
        if request.route.startswith("POST /ota/initiate/"):
            self.sessions.add((parts[-1], request.body["firmware_version"]))
            session = f"{parts[-1]}_{request.body['firmware_version']}_1764547200"
            return 201, _json({"success": True, "device_id": parts[-1], "session_id": session})
        if request.route.startswith("GET /ota/chunk/"):
            return self._chunk(parts[-1], request.query)
        if request.method == "POST" or request.path == "/ota/status":
            return 200, _json({"success": True})
        return 404, _json({"success": False, "error": "Not found"})

    def _check(self, device_id: str, current: str) -> tuple[int, bytes]:
        available = _version(self.package.version) > _version(current) or "latest_version" in self.info
        doc: dict[str, Any] = {"success": True, "device_id": device_id, "update_available": available}
        if available:
            doc["update_info"] = {**self.package.update_info(current), **self.info}
        return 200, _json(doc)

    def _chunk(self, device_id: str, query: dict[str, str]) -> tuple[int, bytes] | None:
        index, version = int(query["chunk"]), query["version"]
        if (device_id, version) not in self.sessions or not 0 <= index < self.package.total_chunks:
            return 400, _json({"success": False, "error": "No active OTA session or invalid chunk"})
        data = self.package.ciphertext[index * CHUNK_SIZE : (index + 1) * CHUNK_SIZE]
        if index in self.corrupt:
            data = bytes([data[0] ^ 0x55]) + data[1:]
        if self.drop.get(index, 0) > 0:
            self.drop[index] -= 1
            return None
        encoded = base64.b64encode(data).decode()
        return 200, _json(
            {
                "success": True,
                "device_id": device_id,
                "chunk_index": index,
                "chunk_data": encoded,
                "chunk_size": len(data),
            }
        )


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return ()


@contextmanager
def serving(server: Fw134Server) -> Iterator[Fw134Server]:
    """Run *server* on 127.0.0.1:<free port> (HTTP/1.1, keep-alive) for the ``with`` block."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with server.lock:
                server.connections += 1
                self.connection_number = server.connections

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            request = Request(self.command, parts.path, query, json.loads(raw) if raw else None, self.connection_number)
            reply = server.answer(request)
            if reply is None:  # promise a full chunk reply, send half of it, hang up
                self.send_response(200)
                self.send_header("Content-Length", "4000")
                self.end_headers()
                self.wfile.write(b'{"success": true, "chunk_data": "')
                self.close_connection = True
                return
            status, body = reply
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, name="fw134-ota-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
