"""Fixtures for the app's tests: real photos, a real cast, real dlib encodings."""

import io
import pathlib
import shutil
import sys

import pytest
from PIL import Image

from face_rec import create_app
from face_rec.create_encodings import main as create_encodings

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import demo_cast  # noqa: E402  (scripts/, shared with the command line)


@pytest.fixture(scope="session")
def photos():
    """The face_recognition 1.3.0 sdist's test images, fetched with pip once and cached."""
    return demo_cast.test_images()


@pytest.fixture(scope="session")
def built_gallery(tmp_path_factory):
    """The demo cast (obama.jpg, biden.jpg) and its encodings, built once per session."""
    root = tmp_path_factory.mktemp("gallery")
    demo_cast.build_demo_cast(root / "casts")
    assert create_encodings(["--casts-dir", str(root / "casts"), "--encodings-dir", str(root / "encodings"),
                             "--quiet"]) == 0
    return root


@pytest.fixture
def gallery(built_gallery, tmp_path):
    """A private copy of the built gallery, free to change."""
    shutil.copytree(built_gallery, tmp_path / "g")
    return tmp_path / "g"


@pytest.fixture
def app(gallery):
    app = create_app({"CASTS_DIR": gallery / "casts", "ENCODINGS_DIR": gallery / "encodings", "MAX_UPLOAD_MB": 10})
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def encode(image, fmt="JPEG", **params):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.fixture
def upload(client):
    """POST bytes as the 'image' field to the match API; return the response."""
    def post(data, name="photo.jpg", **fields):
        return client.post("/api/v1/match", data={"image": (io.BytesIO(data), name), **fields},
                           content_type="multipart/form-data")
    return post


@pytest.fixture
def obama2(photos):
    return Image.open(photos / "obama2.jpg")
