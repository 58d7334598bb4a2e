"""Gunicorn's logger for the app (roles/gunicorn's `logger_class`): its lines never name a cast
member, as uWSGI's do not (face_rec/privacy.py).

The access log gets the path as privacy.logged_path gives it and no query string, request line,
referer or other header. Gunicorn's own lines ("Error handling request <uri>", "Invalid request
from ip=...: Invalid HTTP request line: '<the line>'") are scrubbed whole once formatted: nginx
hands Gunicorn the request line as the client sent it, dot segments and bytes it refuses included."""

from gunicorn.glogging import Logger

from face_rec import privacy

# The fields the access-log atoms may carry: nothing a visitor typed but the method.
_KEPT_ATOMS = ("m", "s", "B", "b", "M", "D", "T", "L", "H", "p")


def _scrubbed(msg, args):
    text = str(msg)
    if args:
        try:
            text = text % args
        except (TypeError, ValueError):
            text = " ".join([text, *map(str, args)])
    return privacy.scrubbed(text)


class PathPrivateLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        every = super().atoms(resp, req, environ, request_time)
        atoms = {name: every[name] for name in _KEPT_ATOMS}
        atoms["U"] = privacy.scrubbed(privacy.logged_path(environ.get("PATH_INFO") or "/"))
        return atoms

    def critical(self, msg, *args, **kwargs):
        super().critical(_scrubbed(msg, args), **kwargs)

    def error(self, msg, *args, **kwargs):
        super().error(_scrubbed(msg, args), **kwargs)

    def warning(self, msg, *args, **kwargs):
        super().warning(_scrubbed(msg, args), **kwargs)

    def info(self, msg, *args, **kwargs):
        super().info(_scrubbed(msg, args), **kwargs)

    def debug(self, msg, *args, **kwargs):
        super().debug(_scrubbed(msg, args), **kwargs)

    def exception(self, msg, *args, **kwargs):
        super().exception(_scrubbed(msg, args), **kwargs)

    def log(self, lvl, msg, *args, **kwargs):
        super().log(lvl, _scrubbed(msg, args), **kwargs)
