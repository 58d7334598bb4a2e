"""JSON API, /api/v1/. Errors come back as {"error": {"status", "message"}}."""

from flask import Blueprint, abort, jsonify

from face_rec.gallery import current_snapshot
from face_rec.matching import match_photo, parse_match_request
from face_rec.media_urls import member_photo_url

bp = Blueprint("api", __name__)


@bp.post("/match")
def match():
    """The photo as the multipart field 'image' or as the body (Content-Type image/jpeg,
    image/png or image/webp). Sizes and boxes are in the photo's own pixels, upright."""
    data, cast, k = parse_match_request()
    photo, faces, found = match_photo(data, cast, k)
    return jsonify(
        image={"width": photo.width, "height": photo.height}, cast=cast, k=k, faces_found=found,
        faces=[{"number": f.number, "box": dict(zip(("top", "right", "bottom", "left"), f.box)),
                "matches": f.matches} for f in faces])


@bp.get("/casts")
def casts():
    return jsonify(casts=[{"slug": c.slug, "title": c.title, "description": c.description,
                           "members": len(c.members)} for c in current_snapshot().catalog.values()])


@bp.get("/casts/<cast_slug>")
def cast(cast_slug):
    found = current_snapshot().catalog.get(cast_slug)
    if found is None:
        abort(404, description=f"unknown cast '{cast_slug}'")
    return jsonify(slug=found.slug, title=found.title, description=found.description, members=[
        {"slug": m.slug, "name": m.name, "role": m.role,
         "photos": [member_photo_url(found.slug, m.slug, p) for p in m.photos]} for m in found.members.values()])
