"""The match step shared by the HTML page and the API: read the upload, find its faces and
each face's closest cast members, draw the result."""

import base64
import dataclasses
import io
import logging
import re
import time

from flask import Response, abort, current_app, request
from PIL import Image, ImageDraw

from face_rec.decode import ImageError
from face_rec.decode_process import DecodeProcess
from face_rec.face_compare import similarity
from face_rec.faces import face_encodings, find_faces
from face_rec.gallery import current_snapshot
from face_rec.media_urls import face_url, member_photo_url
from face_rec.metrics import observe_decode_over_limit, observe_match, observe_skipped_match

log = logging.getLogger(__name__)


@dataclasses.dataclass
class FaceResult:
    number: int
    box: tuple  # top, right, bottom, left, in the photo's own pixels
    pixel_box: tuple  # the same box in the decoded pixels, for drawing on them
    matches: list  # dicts: cast, member, name, distance, score, photo_url


# A photo sent as the request's body instead of a multipart form.
RAW_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
HOW_TO_SEND = ("send the photo as the multipart field 'image', or as the request's body with "
               "Content-Type image/jpeg, image/png or image/webp")
K = re.compile(r"[0-9]{1,6}")


def parse_match_request():
    """The uploaded photo's bytes, the cast (or None for all) and k, or an HTTP error.

    The photo comes as the multipart field 'image' (cast and k as form fields or in the query
    string) or as the body itself with an image type (cast and k in the query string)."""
    if request.mimetype in RAW_TYPES:
        data, params = request.get_data(), request.args
    elif request.mimetype == "multipart/form-data":
        uploads = request.files.getlist("image")
        if not uploads:
            abort(400, description=f"no photo: {HOW_TO_SEND}")
        if len(uploads) > 1:
            abort(400, description=f"{len(uploads)} files in the field 'image': send one photo")
        data, params = uploads[0].read(), request.values
    else:
        abort(415, description=f"{_describe_type(request.mimetype)} is not accepted: {HOW_TO_SEND}")
    config = current_app.config
    cast = _param(params, "cast") or None
    if cast is not None and cast not in current_snapshot().catalog:
        abort(404, description=f"unknown cast '{cast}'")
    raw_k = _param(params, "k")
    if raw_k and (not K.fullmatch(raw_k) or not 1 <= int(raw_k) <= config["MAX_TOP_K"]):
        abort(400, description=f"k must be a whole number from 1 to {config['MAX_TOP_K']}")
    return data, cast, int(raw_k) if raw_k else config["TOP_K"]


def _param(params, name):
    """A parameter given at most once, in printable ASCII (64 characters at most), or ''."""
    values = params.getlist(name)
    if len(values) > 1:
        abort(400, description=f"{name} is given {len(values)} times: give it once")
    value = values[0] if values else ""
    if not (value.isascii() and value.isprintable() and len(value) <= 64):
        abort(400, description=f"{name} must be printable ASCII, at most 64 characters")
    return value


def _describe_type(mimetype):
    if not mimetype:
        return "a request without a Content-Type"
    if mimetype.isascii() and mimetype.isprintable() and len(mimetype) <= 64:
        return f"Content-Type {mimetype}"
    return "this Content-Type"


def upload_decoder():
    """This app's DecodeProcess: uploads are decoded there, under the kernel's limits."""
    app = current_app._get_current_object()
    decoder = app.extensions.get("face_rec_decoder")
    if decoder is None:
        decoder = app.extensions["face_rec_decoder"] = DecodeProcess(app.config["DECODE_CPU_SECONDS"],
                                                                      app.config["DECODE_MEMORY_MB"])
    return decoder


def skip_if_nginx_gave_up():
    """nginx answers a match busy once it has waited FACE_REC_ANSWER_WITHIN_S for it since
    FACE_REC_PASSED_AT (roles/nginx's match location). A match that waited that long in the WSGI server's
    queue has no one left to read its answer: it is not worked on, or a crowd would keep every
    worker on answers no one reads. 499 (nginx's code for a request whose client has gone)
    keeps it apart from the app's errors in the metrics; no one receives it."""
    environ = request.environ
    try:
        # uwsgi_param under uWSGI; headers nginx sets (over any a client sent) under Gunicorn.
        passed_at = float(environ.get("FACE_REC_PASSED_AT") or environ["HTTP_X_FACE_REC_PASSED_AT"])
        within = float(environ.get("FACE_REC_ANSWER_WITHIN_S") or environ["HTTP_X_FACE_REC_ANSWER_WITHIN_S"])
    except (KeyError, ValueError):
        return  # not behind our nginx (tests, flask run)
    waited = time.time() - passed_at
    if waited >= within:
        log.warning("skipped a match nginx had answered busy: it waited %.1f s for a worker", waited)
        observe_skipped_match()
        abort(Response(status=499))


def match_photo(data, cast, k):
    """Find the faces in the photo and each one's k closest members: the largest MAX_FACES of
    them when there are more (each face's encoding costs ~30 ms of CPU). Returns (photo,
    [FaceResult], the number of faces found)."""
    skip_if_nginx_gave_up()
    config = current_app.config
    started = time.perf_counter()
    decoder = upload_decoder()
    decoder.last_cost = None
    try:
        photo, boxes = find_faces(data, config["MAX_IMAGE_PIXELS"], config["MIN_FACE_PERCENT"],
                                  config["MIN_FACE_PIXELS"], decode=decoder.load_photo)
    except ImageError as error:
        if decoder.last_cost is not None and decoder.last_cost.over_limit:
            observe_decode_over_limit()
        abort(error.status, description=str(error))
    if not boxes:
        observe_match(time.perf_counter() - started, 0)
        abort(422, description="no face found in the photo")
    found = len(boxes)
    if found > config["MAX_FACES"]:
        largest = sorted(range(found), key=lambda i: -(boxes[i][2] - boxes[i][0]) * (boxes[i][1] - boxes[i][3]))
        boxes = [boxes[i] for i in sorted(largest[:config["MAX_FACES"]])]
    snapshot = current_snapshot()
    faces = []
    for number, (box, encoding) in enumerate(zip(boxes, face_encodings(photo.pixels, boxes)), 1):
        matches = []
        for match in snapshot.index.search(encoding, k, cast):
            member = snapshot.catalog[match.cast].members[match.member]
            matches.append({
                "cast": match.cast, "member": match.member, "name": member.name, "role": member.role,
                "distance": round(match.distance, 4),
                "score": round(similarity(match.distance, config["TOLERANCE"]), 4),
                "is_match": match.distance <= config["TOLERANCE"],
                "photo_url": member_photo_url(match.cast, match.member, match.photo),
                "face_url": face_url(match.cast, match.member, match.photo),
            })
        faces.append(FaceResult(number, photo.photo_box(box), box, matches))
    observe_match(time.perf_counter() - started, found)
    return photo, faces, found


def face_crop_data_url(image, box, side=128):
    """One face of the upload (box in the image's pixels), cropped square around it, as a small
    data: URL."""
    height, width = image.shape[:2]
    top, right, bottom, left = box
    size = min(round(max(bottom - top, right - left) * 1.6), width, height)
    x0 = int(min(max(0, (left + right - size) / 2), width - size))
    y0 = int(min(max(0, (top + bottom - size) / 2), height - size))
    picture = Image.fromarray(image[y0:y0 + size, x0:x0 + size]).resize((side, side))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def annotated_data_url(image, faces, max_side=900):
    """The photo with numbered boxes, as a data: URL (the upload is never stored to be linked)."""
    picture = Image.fromarray(image)
    scale = min(1.0, max_side / max(picture.size))
    if scale < 1.0:
        picture = picture.resize((round(picture.width * scale), round(picture.height * scale)))
    draw = ImageDraw.Draw(picture)
    width = max(2, round(max(picture.size) / 300))
    for face in faces:
        top, right, bottom, left = (round(v * scale) for v in face.pixel_box)
        draw.rectangle((left, top, right, bottom), outline=(255, 200, 0), width=width)
        label = str(face.number)
        draw.rectangle((left, max(0, top - 22), left + 14 + 8 * len(label), max(22, top)), fill=(255, 200, 0))
        draw.text((left + 5, max(0, top - 22) + 5), label, fill=(0, 0, 0))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
