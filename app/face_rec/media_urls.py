"""The URLs of members' photos (/media/...) and of their face thumbnails (/thumbs/...).

Their paths mirror casts_dir and the thumbs folder (nginx serves both from disk; browse_casts
does without nginx). Photo file names need not be slugs, so the path is percent-encoded."""

from urllib.parse import quote

from face_rec.gallery import current_snapshot


def member_photo_url(cast, member, photo):
    return "/media/" + quote(f"{cast}/{member}/{photo}")


def face_thumb_url(cast, member, photo):
    return "/thumbs/" + quote(f"{cast}/{member}/{photo}.webp")


def face_url(cast, member, photo):
    """The photo's face thumbnail when create_encodings made one, else the photo."""
    if (cast, member, photo) in current_snapshot().encoded:
        return face_thumb_url(cast, member, photo)
    return member_photo_url(cast, member, photo)


def member_face_url(cast, member):
    """The first of a member's photos that has a face thumbnail (else the first photo); member
    is a casts.Member."""
    encoded = current_snapshot().encoded
    photo = next((p for p in member.photos if (cast, member.slug, p) in encoded), member.photos[0])
    return face_url(cast, member.slug, photo)
