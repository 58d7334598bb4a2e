"""The pages to browse the casts (/casts, /casts/<cast>, /casts/<cast>/<member>), and members'
photos and face thumbnails (/media/..., /thumbs/...) where nginx does not serve them.
The casts themselves are read in casts.py."""

import pathlib

from flask import Blueprint, abort, current_app, render_template, send_from_directory

from face_rec.gallery import current_snapshot
from face_rec.media_urls import member_face_url, member_photo_url
from face_rec.thumbs import thumbs_dir_for

bp = Blueprint("browse", __name__)

# How long browsers keep members' photos and thumbnails, as nginx's nginx_media_max_age_s: a
# forgotten member's face leaves their caches within it.
MEDIA_MAX_AGE_S = 600


def _cast_or_404(cast_slug):
    cast = current_snapshot().catalog.get(cast_slug)
    if cast is None:
        abort(404, description=f"unknown cast '{cast_slug}'")
    return cast


def _member_or_404(cast, member_slug):
    member = cast.members.get(member_slug)
    if member is None:
        abort(404, description=f"unknown member '{member_slug}' in cast '{cast.slug}'")
    return member


@bp.get("/casts")
def casts():
    catalog = current_snapshot().catalog
    return render_template("casts.html", casts=list(catalog.values()))


@bp.get("/casts/<cast_slug>")
def cast(cast_slug):
    return render_template("cast.html", cast=_cast_or_404(cast_slug))


@bp.get("/casts/<cast_slug>/<member_slug>")
def member(cast_slug, member_slug):
    found = _cast_or_404(cast_slug)
    return render_template("member.html", cast=found, member=_member_or_404(found, member_slug))


@bp.app_context_processor
def _template_helpers():
    return {"member_face_url": member_face_url, "member_photo_url": member_photo_url}


def _private(response):
    """Faces of real people, as nginx sends them: browsers keep them MEDIA_MAX_AGE_S at most,
    then ask again; shared caches keep none."""
    response.cache_control.public = False
    response.cache_control.private = True
    response.cache_control.must_revalidate = True
    return response


@bp.get("/thumbs/<cast_slug>/<member_slug>/<name>")
def thumb(cast_slug, member_slug, name):
    """A face thumbnail. In production nginx serves /thumbs/ itself."""
    found = _member_or_404(_cast_or_404(cast_slug), member_slug)
    if not name.endswith(".webp") or name[:-len(".webp")] not in found.photos:
        abort(404, description="unknown thumbnail")
    folder = thumbs_dir_for(current_app.config["ENCODINGS_DIR"]) / cast_slug / member_slug
    return _private(send_from_directory(folder, name, max_age=MEDIA_MAX_AGE_S))


@bp.get("/media/<cast_slug>/<member_slug>/<photo>")
def photo(cast_slug, member_slug, photo):
    """A member's reference photo. In production nginx serves /media/ itself."""
    found = _member_or_404(_cast_or_404(cast_slug), member_slug)
    if photo not in found.photos:
        abort(404, description="unknown photo")
    folder = pathlib.Path(current_app.config["CASTS_DIR"]) / cast_slug / member_slug
    return _private(send_from_directory(folder, photo, max_age=MEDIA_MAX_AGE_S))
