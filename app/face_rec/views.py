"""HTML pages: upload a photo, see the matches."""

from flask import Blueprint, current_app, render_template

from face_rec.gallery import current_snapshot
from face_rec.matching import annotated_data_url, face_crop_data_url, match_photo, parse_match_request

bp = Blueprint("views", __name__)


@bp.get("/")
def index():
    catalog = current_snapshot().catalog
    return render_template("index.html", casts=list(catalog.values()),
                           max_upload_mb=current_app.config["MAX_UPLOAD_MB"])


@bp.post("/match")
def match():
    data, cast, k = parse_match_request()
    photo, faces, found = match_photo(data, cast, k)
    catalog = current_snapshot().catalog
    crops = {face.number: face_crop_data_url(photo.pixels, face.pixel_box) for face in faces}
    return render_template("result.html", photo_url=annotated_data_url(photo.pixels, faces), faces=faces,
                           crops=crops, found=found, cast=catalog[cast] if cast else None)
