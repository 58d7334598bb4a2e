"""The logs never name a cast member: paths below a cast are logged up to the cast."""

import pytest

from face_rec.privacy import logged_path, scrubbed


@pytest.mark.parametrize(("path", "logged"), [
    ("/casts/presidents/biden", "/casts/presidents/-"),
    ("/media/presidents/biden/biden.jpg", "/media/presidents/-"),
    ("/thumbs/presidents/biden/biden.jpg.webp", "/thumbs/presidents/-"),
    ("/casts/presidents", "/casts/presidents"),
    ("/casts/presidents/", "/casts/presidents/"),
    ("/api/v1/casts/presidents", "/api/v1/casts/presidents"),
    ("/static/style.css", "/static/style.css"),
    # Other spellings of the same path (the app answers 404; the log must not name them either).
    ("/CASTS/Presidents/BIDEN", "/CASTS/Presidents/-"),
    ("//casts//presidents//biden", "//casts//presidents//-"),
])
def test_logged_path(path, logged):
    assert logged_path(path) == logged


@pytest.mark.parametrize(("line", "logged"), [
    ("GET /x/../casts/presidents/biden 404", "GET /x/../casts/presidents/- 404"),
    ("Invalid HTTP request line: 'GET /casts/presidents/biden/\\xff HTTP/1.0'",
     "Invalid HTTP request line: 'GET /casts/presidents/- HTTP/1.0'"),
    ("Error handling request GET /media/presidents/biden/biden.jpg", "Error handling request GET /media/presidents/-"),
    ("GET /casts/presidents 200", "GET /casts/presidents 200"),
    ("GET /api/v1/casts/presidents 200", "GET /api/v1/casts/presidents 200"),
])
def test_scrubbed_lines_name_no_member(line, logged):
    assert scrubbed(line) == logged
