"""Gunicorn's logger for the app (roles/gunicorn's `logger_class`): its lines never name a cast
member, as uWSGI's do not (face_rec/privacy.py).

The access log gets the path as privacy.logged_path gives it and no query string, request line,
referer or other header; Gunicorn's own error lines ("Error handling request <uri>") get the
same treatment for any path they carry."""

from gunicorn.glogging import Logger

from face_rec import privacy

# The fields the access-log atoms may carry: nothing a visitor typed but the method.
_KEPT_ATOMS = ("m", "s", "B", "b", "M", "D", "T", "L", "H", "p")


def _hidden(value):
    if isinstance(value, str) and value.startswith("/"):
        return privacy.logged_path(value.split("?", 1)[0])
    return value


class PathPrivateLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        every = super().atoms(resp, req, environ, request_time)
        atoms = {name: every[name] for name in _KEPT_ATOMS}
        atoms["U"] = privacy.logged_path(environ.get("PATH_INFO") or "/")
        return atoms

    def exception(self, msg, *args, **kwargs):
        super().exception(msg, *(_hidden(arg) for arg in args), **kwargs)

    def error(self, msg, *args, **kwargs):
        super().error(msg, *(_hidden(arg) for arg in args), **kwargs)

    def warning(self, msg, *args, **kwargs):
        super().warning(msg, *(_hidden(arg) for arg in args), **kwargs)
