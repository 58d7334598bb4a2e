"""The face_rec web app: create_app() builds it; wsgi.py serves it."""

import base64
import dataclasses
import io
import logging

from flask import Flask, Request, abort, current_app, jsonify, render_template, request
from PIL import Image, ImageDraw
from werkzeug.exceptions import HTTPException

from face_rec import settings
from face_rec.face_compare import ImageError, face_encodings, face_locations, load_image, load_models, similarity
from face_rec.gallery import Gallery

log = logging.getLogger(__name__)


class InMemoryRequest(Request):
    """Uploads stay in memory: they are faces of real people and never touch the disk
    (werkzeug would otherwise spool files over 500 KB to a temporary file)."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


@dataclasses.dataclass
class FaceResult:
    number: int
    box: tuple  # top, right, bottom, left
    matches: list  # dicts: cast, member, name, distance, score, photo_url


def create_app(overrides=None):
    """Build the app: settings, the gallery (loaded now, so /healthz means ready), blueprints."""
    app = Flask(__name__)
    app.request_class = InMemoryRequest
    app.config.update(settings.load(overrides))
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_UPLOAD_MB"] * 1024 * 1024
    load_models()  # before the first request (and, under uWSGI, before workers fork)
    app.extensions["face_rec"] = Gallery(app.config["CASTS_DIR"], app.config["ENCODINGS_DIR"])

    from face_rec import api, browse_casts, views  # noqa: PLC0415 (blueprints import this module)
    app.register_blueprint(views.bp)
    app.register_blueprint(browse_casts.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)

    @app.get("/healthz")
    def healthz():
        snapshot = app.extensions["face_rec"].snapshot()
        return jsonify(status="ok", casts=len(snapshot.catalog), encodings=len(snapshot.index))

    return app


def _wants_json():
    return request.path.startswith("/api/") or request.path == "/healthz"


def _http_error(error):
    if _wants_json():
        return jsonify(error={"status": error.code, "message": error.description}), error.code
    return render_template("error.html", status=error.code, message=error.description), error.code


def _unexpected_error(error):
    # Logged with its trace for us; the visitor gets a plain 500 and no stack trace.
    log.exception("unexpected error on %s %s", request.method, request.path)
    message = "something went wrong on our side"
    if _wants_json():
        return jsonify(error={"status": 500, "message": message}), 500
    return render_template("error.html", status=500, message=message), 500


def parse_match_request():
    """The uploaded photo's bytes, the cast (or None for all) and k, or an HTTP error."""
    upload = request.files.get("image")
    if upload is None:
        abort(400, description="no photo: send it as the multipart field 'image'")
    cast = request.values.get("cast") or None
    if cast and cast not in current_app.extensions["face_rec"].snapshot().catalog:
        abort(404, description=f"unknown cast '{cast}'")
    raw_k = request.values.get("k") or str(current_app.config["TOP_K"])
    if not raw_k.isdigit() or not 1 <= int(raw_k) <= current_app.config["MAX_TOP_K"]:
        abort(400, description=f"k must be a whole number from 1 to {current_app.config['MAX_TOP_K']}")
    return upload.read(), cast, int(raw_k)


def match_photo(data, cast, k):
    """Find every face in the photo and its k closest members. Returns (image, [FaceResult])."""
    config = current_app.config
    try:
        image = load_image(data, config["MAX_IMAGE_PIXELS"])
    except ImageError as error:
        abort(error.status, description=str(error))
    boxes = face_locations(image, config["MAX_IMAGE_SIDE"])
    if not boxes:
        abort(422, description="no face found in the photo")
    snapshot = current_app.extensions["face_rec"].snapshot()
    faces = []
    for number, (box, encoding) in enumerate(zip(boxes, face_encodings(image, boxes)), 1):
        matches = []
        for match in snapshot.index.search(encoding, k, cast):
            member = snapshot.catalog[match.cast].members[match.member]
            matches.append({
                "cast": match.cast, "member": match.member, "name": member.name, "role": member.role,
                "distance": round(match.distance, 4),
                "score": round(similarity(match.distance, config["TOLERANCE"]), 4),
                "is_match": match.distance <= config["TOLERANCE"],
                "photo_url": f"/media/{match.cast}/{match.member}/{match.photo}",
            })
        faces.append(FaceResult(number, box, matches))
    return image, faces


def annotated_data_url(image, faces, max_side=900):
    """The photo with numbered boxes, as a data: URL (the upload is never stored to be linked)."""
    picture = Image.fromarray(image)
    scale = min(1.0, max_side / max(picture.size))
    if scale < 1.0:
        picture = picture.resize((round(picture.width * scale), round(picture.height * scale)))
    draw = ImageDraw.Draw(picture)
    width = max(2, round(max(picture.size) / 300))
    for face in faces:
        top, right, bottom, left = (round(v * scale) for v in face.box)
        draw.rectangle((left, top, right, bottom), outline=(255, 200, 0), width=width)
        label = str(face.number)
        draw.rectangle((left, max(0, top - 22), left + 14 + 8 * len(label), max(22, top)), fill=(255, 200, 0))
        draw.text((left + 5, max(0, top - 22) + 5), label, fill=(0, 0, 0))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
