"""Gunicorn's logger for the app (roles/gunicorn's `logger_class`): its lines never name a cast
member, as uWSGI's do not (face_rec/privacy.py).

The access log gets the path as privacy.logged_path gives it and no query string, request line,
referer or other header. Gunicorn's own lines ("Error handling request <uri>", "Invalid request
from ip=...: Invalid HTTP request line: '<the line>'") are scrubbed whole once formatted: nginx
hands Gunicorn the request line as the client sent it, dot segments and bytes it refuses included."""

import logging

from gunicorn.glogging import Logger

from face_rec import privacy

# The fields the access-log atoms may carry: nothing a visitor typed but the method.
_KEPT_ATOMS = ("m", "s", "B", "b", "M", "D", "T", "L", "H", "p")


class _NoMemberPaths(logging.Filter):
    """Every record of Gunicorn's error log, whatever its level, scrubbed once formatted."""

    def filter(self, record):
        record.msg, record.args = privacy.scrubbed(record.getMessage()), ()
        return True


class PathPrivateLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)  # again on each SIGHUP: the filter is added once
        if not any(isinstance(found, _NoMemberPaths) for found in self.error_log.filters):
            self.error_log.addFilter(_NoMemberPaths())

    def atoms(self, resp, req, environ, request_time):
        every = super().atoms(resp, req, environ, request_time)
        atoms = {name: every[name] for name in _KEPT_ATOMS}
        atoms["U"] = privacy.scrubbed(privacy.logged_path(environ.get("PATH_INFO") or "/"))
        return atoms
