"""What the logs may hold of a request: never a cast member's slug.

A member who asks to be forgotten must leave no trace (playbooks/forget.yml proves it), so the
paths that name one (/casts/<cast>/<member>, /media/<cast>/<member>/<photo>,
/thumbs/<cast>/<member>/<photo>.webp) are logged up to the cast only. nginx's access log
follows the same rule (roles/nginx, map $face_rec_logged_uri)."""

import re

_MEMBER_PATH = re.compile(r"^(/(?:casts|media|thumbs)/[^/]+/)[^/]")


def logged_path(path):
    """The request's path as the logs may hold it: '/casts/presidents/-' for a member's page."""
    found = _MEMBER_PATH.match(path)
    return found.group(1) + "-" if found else path
