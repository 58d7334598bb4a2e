"""Bad input gets a clear 4xx, never a 500 or a trace, and the app keeps serving."""

import io
import os
import struct
import sys
import tempfile
import zlib

import pytest
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from .conftest import encode


def png_header_only(width, height):
    """A tiny PNG that claims width x height pixels: a decompression bomb's header."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = zlib.compress(b"\x00" * (width // 8 + 1) * 16)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def assert_clear_error(response, status, words):
    assert response.status_code == status, response.get_data(as_text=True)
    message = response.json["error"]["message"]
    assert words in message and "Traceback" not in message


@pytest.mark.parametrize(("data", "status", "words"), [
    (b"", 400, "empty"),
    (b"this is not an image at all", 415, "not an image"),
    (png_header_only(20000, 20000), 413, "20000x20000 pixels"),
    (png_header_only(100000, 100000), 413, "100000x100000 pixels"),
])
def test_bad_bytes(upload, data, status, words):
    assert_clear_error(upload(data), status, words)


def test_truncated_photo(photos, upload):
    data = (photos / "obama2.jpg").read_bytes()
    assert_clear_error(upload(data[: len(data) // 3]), 400, "truncated")


def test_gif_is_refused(upload):
    assert_clear_error(upload(encode(Image.new("RGB", (64, 64)), "GIF")), 415, "GIF")


def test_photo_without_a_face(upload):
    assert_clear_error(upload(encode(Image.new("RGB", (640, 480), (120, 140, 160)))), 422, "no face")


def test_missing_field_unknown_cast_and_bad_k(client, photos, upload):
    assert_clear_error(client.post("/api/v1/match", data={"cast": "presidents"}, content_type="multipart/form-data"),
                       400, "multipart field 'image'")
    data = (photos / "obama2.jpg").read_bytes()
    assert_clear_error(upload(data, cast="nope"), 404, "unknown cast 'nope'")
    for k in ("0", "-1", "x", "1000", "3.0", " 3", "+3", "1e1", "9" * 5000):
        assert_clear_error(upload(data, k=k), 400, "k must be")


@pytest.mark.parametrize("content_type", [
    None, "text/plain", "application/octet-stream", "application/x-www-form-urlencoded", "application/json",
    "image/gif", "image/jpg", "image/*", "multipart/mixed; boundary=x", "IMAGE/JPEG2", "image/jpeg\u00e9",
])
def test_other_content_types_get_415_saying_what_to_send(client, photos, content_type):
    headers = {} if content_type is None else {"Content-Type": content_type}
    answer = client.post("/api/v1/match", data=(photos / "obama2.jpg").read_bytes(), headers=headers)
    assert_clear_error(answer, 415, "multipart field 'image', or as the request's body with Content-Type image/jpeg, "
                                    "image/png or image/webp")


@pytest.mark.parametrize(("query", "words"), [
    ("k=%C2%B2", "k must be printable ASCII"),  # '²': str.isdigit() says yes, int() says no
    ("k=%D9%A3", "k must be printable ASCII"),  # Arabic-Indic three
    ("k=%EF%BC%93", "k must be printable ASCII"),  # fullwidth three
    ("k=%ff", "k must be a whole number"),  # not UTF-8: werkzeug keeps it as the ASCII '%FF'
    ("k=" + "9" * 70, "k must be printable ASCII, at most 64"),
    ("k=99999999", "k must be a whole number from 1 to 20"),
    ("k=1&k=2", "k is given 2 times"),
    ("k=%00", "k must be printable ASCII"),
    ("cast=pr%C3%A9sidents", "cast must be printable ASCII"),
    ("cast=%ff%fe", "unknown cast '%FF%FE'"),
    ("cast=a%0Ab", "cast must be printable ASCII"),
    ("cast=presidents&cast=presidents", "cast is given 2 times"),
])
def test_parameters_are_ascii_and_given_once(client, photos, query, words):
    data = (photos / "obama2.jpg").read_bytes()
    raw = client.post(f"/api/v1/match?{query}", data=data, content_type="image/jpeg")
    status = 404 if words.startswith("unknown") else 400
    assert_clear_error(raw, status, words)
    form = client.post(f"/api/v1/match?{query}", data={"image": (io.BytesIO(data), "p.jpg")},
                       content_type="multipart/form-data")
    assert_clear_error(form, status, words)


@pytest.mark.parametrize("path", ["/api/v1/match", "/api/v1/casts", "/casts"])
def test_a_query_string_of_raw_bytes_gets_400(client, photos, path):
    # Not percent-encoded: werkzeug's request.args would raise UnicodeDecodeError on it.
    answer = client.post(path, data=(photos / "obama2.jpg").read_bytes(), content_type="image/jpeg",
                         environ_overrides={"QUERY_STRING": "k=\xb2"})
    assert answer.status_code == 400 and "query string must be ASCII" in answer.get_data(as_text=True)


def test_parameters_in_form_fields_are_checked_too(upload, photos):
    data = (photos / "obama2.jpg").read_bytes()
    assert_clear_error(upload(data, k="\u00b2"), 400, "k must be printable ASCII")
    assert_clear_error(upload(data, cast="\u00e9"), 400, "cast must be printable ASCII")


def test_one_photo_per_request(client, photos):
    data = (photos / "obama2.jpg").read_bytes()
    answer = client.post("/api/v1/match", data={"image": [(io.BytesIO(data), "a.jpg"), (io.BytesIO(data), "b.jpg")]},
                         content_type="multipart/form-data")
    assert_clear_error(answer, 400, "2 files in the field 'image': send one photo")


def test_raw_body_errors(app, client):
    assert_clear_error(client.post("/api/v1/match", data=b"", content_type="image/jpeg"), 400, "empty")
    assert_clear_error(client.post("/api/v1/match", data=b"junk", content_type="image/png"), 415, "not an image")
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    answer = client.post("/api/v1/match", data=os.urandom(2 * 1024 * 1024), content_type="image/jpeg")
    assert_clear_error(answer, 413, "larger than 10 MB")


def test_upload_over_the_limit(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    response = client.post("/api/v1/match", data={"image": (io.BytesIO(os.urandom(2 * 1024 * 1024)), "x.jpg")})
    assert response.status_code == 413 and "error" in response.json


def test_app_keeps_serving_after_bad_input(client, photos, upload):
    for data in (b"", b"junk", png_header_only(20000, 20000)):
        assert upload(data).status_code in (400, 413, 415)
    assert client.get("/healthz").status_code == 200
    assert upload((photos / "obama2.jpg").read_bytes()).status_code == 200


def test_html_errors_are_pages_not_traces(client):
    response = client.post("/match", data={"image": (io.BytesIO(b"junk"), "x.jpg")},
                           content_type="multipart/form-data")
    assert response.status_code == 415
    html = response.get_data(as_text=True)
    assert "<h1>Not a photo we can read</h1>" in html and "(HTTP 415)" in html and "Traceback" not in html


_opened = None


def _record_opens(event, args):
    if event == "open" and _opened is not None:
        _opened.append(str(args[0]))


sys.addaudithook(_record_opens)


def test_uploads_never_touch_the_disk(photos, client, tmp_path, monkeypatch):
    # werkzeug spools uploads over 500 KB to a temporary file unless told otherwise; that file
    # is unnamed (O_TMPFILE), so watch the opens themselves with an audit hook.
    global _opened
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    data = (photos / "32bit.png").read_bytes()
    assert len(data) > 500 * 1024
    # Encoded here, in memory: the test client would spool a large body itself.
    boundary, body = encode_multipart({"image": FileStorage(io.BytesIO(data), "32bit.png")})
    _opened = []
    try:
        response = client.post("/api/v1/match", data=body, content_type=f"multipart/form-data; boundary={boundary}")
        opened, _opened = _opened, None
    finally:
        _opened = None
    assert response.status_code == 200
    assert [path for path in opened if path.startswith(str(spool))] == []
    assert list(spool.iterdir()) == []


def test_unknown_routes_and_traversal(client):
    assert client.get("/api/v1/casts/nope").status_code == 404
    assert client.get("/media/presidents/obama/..%2f..%2fcast.yml").status_code == 404
    assert client.get("/media/presidents/obama/member.yml").status_code == 404
    assert client.get("/casts/..").status_code == 404


@pytest.mark.parametrize(("environ", "words"), [
    ({"FACE_REC_MIN_FACE_PERCENT": "0.5"}, "MIN_FACE_PERCENT must be from 1.0 to 50.0"),
    ({"FACE_REC_MIN_FACE_PERCENT": "eight"}, "MIN_FACE_PERCENT must be a float"),
    ({"FACE_REC_MIN_FACE_PIXELS": "5"}, "MIN_FACE_PIXELS must be from 20 to 400"),
    ({"FACE_REC_TOP_K": "-1"}, "TOP_K must be positive"),
])
def test_a_bad_setting_is_refused_by_name(environ, words):
    from face_rec import settings
    with pytest.raises(settings.SettingsError, match=words):
        settings.load(environ=environ)


def test_create_encodings_refuses_a_bad_min_face_percent(gallery, capsys):
    from face_rec.create_encodings import main as create_encodings
    with pytest.raises(SystemExit) as exit_info:
        create_encodings(["--casts-dir", str(gallery / "casts"), "--encodings-dir", str(gallery / "encodings"),
                          "--min-face-percent", "90"])
    assert exit_info.value.code == 2 and "MIN_FACE_PERCENT must be from 1.0 to 50.0" in capsys.readouterr().err
