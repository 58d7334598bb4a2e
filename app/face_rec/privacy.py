"""What the logs may hold of a request: never a cast member's slug.

A member who asks to be forgotten must leave no trace (playbooks/forget.yml proves it), so the
paths that name one (/casts/<cast>/<member>, /media/<cast>/<member>/<photo>,
/thumbs/<cast>/<member>/<photo>.webp) are logged up to the cast only. nginx's access log
follows the same rule (roles/nginx, map $face_rec_logged_uri)."""

import re

# In any case and with doubled slashes too: a path spelled /CASTS/Presidents/BIDEN reaches the
# app (which answers 404) and still names the member to whoever reads the log.
_MEMBER_PATH = re.compile(r"^(/+(?:casts|media|thumbs)/+[^/]+/+)[^/]", re.IGNORECASE)


def logged_path(path):
    """The request's path as the logs may hold it: '/casts/presidents/-' for a member's page."""
    found = _MEMBER_PATH.match(path)
    return found.group(1) + "-" if found else path


# Anywhere in a line: a path spelled with dot segments (/x/../casts/...) or quoted inside a
# server's own message ("Invalid HTTP request line: 'GET /casts/...'") still names the member.
_MEMBER_PATH_ANYWHERE = re.compile(r"((?:casts|media|thumbs)/+[^/\s'\"?]+/+)[^\s'\"?]+", re.IGNORECASE)


def scrubbed(text):
    """A whole log line with every member's slug in it replaced by '-', wherever it appears."""
    return _MEMBER_PATH_ANYWHERE.sub(r"\1-", text)
