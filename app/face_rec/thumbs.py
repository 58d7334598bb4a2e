"""Where face thumbnails live: `thumbs/` beside the encodings folder (create_encodings writes
them, nginx serves them at /thumbs/<cast>/<member>/<photo>.webp)."""

import pathlib


def thumbs_dir_for(encodings_dir):
    return pathlib.Path(encodings_dir).parent / "thumbs"


def thumb_path(thumbs_dir, cast, member, photo):
    return pathlib.Path(thumbs_dir) / cast / member / f"{photo}.webp"
