"""Entry points: uWSGI's `module = face_rec.wsgi:app`, Gunicorn's `face_rec.wsgi:gunicorn_app`."""

import io

from face_rec.main import create_app

app = create_app()


class BodyReadFirst:
    """Reads a request's whole body before the app sees it, as uWSGI's post-buffering does.

    An early answer (a 400, 413 or 415 decided from the headers) would otherwise close
    Gunicorn's connection while nginx is still writing the body: nginx's 502. nginx sends a
    Content-Length with every body (it buffers them, up to its own client_max_body_size) and
    the body stays in memory: faces of real people never touch the disk. A length over the
    app's own limit is not read: werkzeug answers 413 from the header alone."""

    def __init__(self, wsgi_app, max_bytes):
        self.wsgi_app = wsgi_app
        self.max_bytes = max_bytes

    def __call__(self, environ, start_response):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # werkzeug answers the bad header itself
        if 0 < length <= self.max_bytes:
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))  # a client that sent less than it said
        return self.wsgi_app(environ, start_response)


gunicorn_app = BodyReadFirst(app, app.config["MAX_CONTENT_LENGTH"])
