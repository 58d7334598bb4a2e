"""The face_rec web app: create_app() builds it; wsgi.py serves it."""

import io
import logging

from flask import Flask, Request, abort, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from face_rec import api, browse_casts, gallery, metrics, privacy, settings, views
from face_rec.faces import load_models

try:
    import uwsgi  # only under uWSGI: its request log's path
except ImportError:
    uwsgi = None

log = logging.getLogger(__name__)


class InMemoryRequest(Request):
    """Uploads stay in memory: they are faces of real people and never touch the disk
    (werkzeug would otherwise spool files over 500 KB to a temporary file)."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


def create_app(overrides=None):
    """Build the app: settings, the gallery (loaded now, so /healthz means ready), blueprints."""
    app = Flask(__name__)
    app.request_class = InMemoryRequest
    app.config.update(settings.load(overrides))
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_UPLOAD_MB"] * 1024 * 1024
    load_models()  # before the first request (and, under uWSGI, before workers fork)
    gallery.init_app(app)

    app.register_blueprint(views.bp)
    app.register_blueprint(browse_casts.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    metrics.init_app(app)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)

    @app.before_request
    def _query_string_is_ascii():
        # Raw bytes over 0x7F in a query string (nginx passes them on) would make werkzeug's
        # request.args raise UnicodeDecodeError: a 500. Anything else must be percent-encoded.
        if not request.query_string.isascii():
            abort(400, description="the query string must be ASCII: percent-encode anything else")

    @app.after_request
    def _log_path_without_members(response):
        # uWSGI's request log (roles/uwsgi's log-format) writes this, never the raw path
        # (Gunicorn's logger works it out itself: face_rec/gunicorn_logging.py).
        if uwsgi is not None:
            uwsgi.set_logvar("face_rec_path", privacy.logged_path(request.path))
        return response

    @app.get("/healthz")
    def healthz():
        snapshot = gallery.current_snapshot()
        return jsonify(status="ok", casts=len(snapshot.catalog), encodings=len(snapshot.index))

    return app


def _wants_json():
    return request.path.startswith("/api/") or request.path == "/healthz"


def _http_error(error):
    message = error.description
    if isinstance(error, RequestEntityTooLarge) and message == RequestEntityTooLarge.description:
        # werkzeug's own 413: the body over MAX_CONTENT_LENGTH, or a form of too many parts.
        message = (f"the upload is larger than {current_app.config['MAX_UPLOAD_MB']} MB, "
                   "or its form has too many parts")
    # Keep the exception's own headers (Allow on a 405), not its HTML Content-Type.
    headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
    if _wants_json():
        return jsonify(error={"status": error.code, "message": message}), error.code, headers
    return render_template("error.html", status=error.code, message=message), error.code, headers


def _unexpected_error(error):
    # Logged with its trace for us; the visitor gets a plain 500 and no stack trace.
    log.exception("unexpected error on %s %s", request.method, privacy.logged_path(request.path))
    message = "something went wrong on our side"
    if _wants_json():
        return jsonify(error={"status": 500, "message": message}), 500
    return render_template("error.html", status=500, message=message), 500
