"""The Flask app factory of the reference EcoWatt server.

``create_app`` loads the FOTA packages and opens the database (its only I/O); the caller owns the app
and must call :func:`close_app` (``ServerHandle`` does). Blueprints: upload, admin and OTA; they read
their state through ``hil.server.state.server_state()`` (OTA also ``hil.server.ota.ota_state()``). The
OTA blueprint is the profile's: PROTOCOL.md's (``hil.server.ota``) or ``ecowatt-fw134``'s (``hil.server.ota_fw134``).
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, Response, current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from hil.protocol.errors import ErrorCode
from hil.server import admin, ota, ota_fw134, upload
from hil.server.config import ServerConfig
from hil.server.defects import ServerDefects
from hil.server.ratelimit import RateLimiter
from hil.server.responses import Answer, ResponseLog
from hil.server.state import EXTENSION_KEY, ServerState, error_response
from hil.server.storage import Storage

_HTTP_CODES = {
    401: ErrorCode.UNAUTHORIZED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
}


def create_app(config: ServerConfig, *, defects: Iterable[str] = (), responses: ResponseLog | None = None) -> Flask:
    """Build the server app on *config*, with the named server *defects* active (see ``hil.server.defects``);
    *responses* continues the answer log of an earlier app on the same database (a restart)."""
    active = ServerDefects(defects)  # validate before touching the database
    ota_packages = ota.load_ota_state(config)  # a broken firmware dir stops the start, before the database opens
    fw134_ota = config.wire.ota.get("chunk_transport") == ota_fw134.CHUNK_TRANSPORT
    fw134_packages = ota_fw134.load_fw134_state(config, ota_packages) if fw134_ota else None  # needs the key
    storage = Storage(config.db_path).open()
    storage.register_devices(config.devices)
    app = Flask("hil.server")
    json_provider = DefaultJSONProvider(app)
    json_provider.sort_keys = False  # answer in PROTOCOL.md's field order
    app.json = json_provider
    app.extensions[EXTENSION_KEY] = ServerState(
        config=config,
        storage=storage,
        defects=active,
        limiter=RateLimiter(
            config.rate_limit,
            config.rate_window_s,
            config.clock,
            count_refusals="rate-limit-counts-refusals" in active,
        ),
        responses=responses if responses is not None else ResponseLog(),
    )
    app.register_blueprint(upload.blueprint(config.wire))
    app.register_blueprint(admin.bp)
    app.extensions[ota.OTA_EXTENSION_KEY] = ota_packages
    if fw134_packages is None:
        app.register_blueprint(ota.bp)
    else:  # the profile's OTA format: base64 chunks in JSON inside sessions (hil.server.ota_fw134)
        app.extensions[ota_fw134.EXTENSION_KEY] = fw134_packages
        app.register_blueprint(ota_fw134.bp)
    app.register_error_handler(HTTPException, _http_error)
    app.after_request(_record_answer)
    return app


def close_app(app: Flask) -> None:
    """Release what :func:`create_app` opened."""
    app.extensions[EXTENSION_KEY].close()


def app_state(app: Flask) -> ServerState:
    """The state of *app* (storage, config, defects) for in-process fixtures and tests."""
    return app.extensions[EXTENSION_KEY]


def _record_answer(response: Response) -> Response:
    app_state(current_app).responses.record(
        Answer(request.method, request.path[:200], response.status_code, request.url_rule is not None)
    )
    return response


def _http_error(exc: HTTPException) -> Response:
    # Unrouted paths, wrong methods and werkzeug's own refusals answer in the protocol's JSON shape.
    code = _HTTP_CODES.get(exc.code or 400, ErrorCode.INVALID_PAYLOAD)
    return error_response(code, exc.description or exc.name, status=exc.code)
