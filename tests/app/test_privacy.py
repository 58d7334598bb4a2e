"""The logs never name a cast member: paths below a cast are logged up to the cast."""

import pytest

from face_rec.privacy import logged_path


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
