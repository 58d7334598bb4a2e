"""create_encodings: turn every cast's photos into 128-d encodings, incrementally.

Only new or changed photos are encoded (a photo whose size and mtime are unchanged is not even
read); removed photos drop out. Each cast's file is replaced atomically, so a running app sees
the old encodings or the new ones. Each encoded photo also gets a small thumbnail centred on
its face (WebP, `thumbs/<cast>/<member>/<photo>.webp` beside the encodings folder), which the
pages show instead of the full photo. The last line says `encodings: changed` or
`encodings: unchanged`, for scripts (and Ansible's changed_when) to read.
"""

import argparse
import functools
import hashlib
import io
import multiprocessing
import os
import pathlib
import shutil
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from face_rec import settings
from face_rec.casts import CastError, load_catalog
from face_rec.decode import ImageError
from face_rec.encodings_store import CastEncodings, read_cast_encodings, write_cast_encodings
from face_rec.faces import face_encodings, find_faces
from face_rec.thumbs import thumb_path, thumbs_dir_for


THUMB_SIDE = 192  # pixels: twice the size the pages show, for sharp screens


def face_thumbnail(image, box, side=THUMB_SIDE):
    """A square WebP centred on the face (head and a little shoulder), as bytes."""
    height, width = image.shape[:2]
    top, right, bottom, left = box
    face = max(bottom - top, right - left)
    crop = min(round(face * 1.9), width, height)
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2 - face * 0.08  # room for the hair
    x0 = int(min(max(0, centre_x - crop / 2), width - crop))
    y0 = int(min(max(0, centre_y - crop / 2), height - crop))
    picture = Image.fromarray(image[y0:y0 + crop, x0:x0 + crop]).resize((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="WEBP", quality=80, method=4)
    return buffer.getvalue()


def encode_photo(detection, job):
    """detection: (max_pixels, min_face_percent, min_face_pixels), the same for every job;
    job: (member, photo, path, hash, size, mtime) -> (job, encoding, thumbnail, reason);
    encoding and thumbnail are None when the photo is skipped, and reason says why."""
    try:
        photo, boxes = find_faces(pathlib.Path(job[2]).read_bytes(), *detection)
    except (ImageError, OSError) as error:
        return job, None, None, f"unreadable: {error}"
    if not boxes:
        return job, None, None, "no face found"
    if len(boxes) > 1:
        return job, None, None, f"{len(boxes)} faces found; a reference photo must show one"
    return job, face_encodings(photo.pixels, boxes)[0], face_thumbnail(photo.pixels, boxes[0]), ""


def _write_atomically(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.chmod(tmp, 0o644)  # nginx serves them
    os.replace(tmp, path)


def plan_cast(cast, cast_dir, previous, thumbs_dir, detection):
    """Split the cast's photos into kept rows (unchanged), skipped ones still valid, and jobs.
    A photo whose thumbnail is missing is encoded again (encodings from before thumbnails).
    Skips decided with other detection settings are tried again: a lower MIN_FACE_PERCENT
    may find the face that was missed."""
    known = {(str(m), str(p)): i for i, (m, p) in enumerate(zip(previous.members, previous.photos))}
    kept, skipped, jobs = [], {}, []
    for member in cast.members.values():
        for photo in member.photos:
            path = cast_dir / member.slug / photo
            stat = path.stat()
            key = (member.slug, photo)
            row = known.get(key)
            has_thumb = thumb_path(thumbs_dir, cast.slug, member.slug, photo).exists()
            if (row is not None and has_thumb and previous.sizes[row] == stat.st_size
                    and previous.mtimes[row] == stat.st_mtime_ns):
                kept.append(row)
                continue
            old_skip = previous.skipped.get(key)
            if (old_skip and old_skip[1] == stat.st_size and old_skip[2] == stat.st_mtime_ns
                    and previous.detection == detection):
                skipped[key] = old_skip
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if row is not None and has_thumb and previous.hashes[row] == digest:  # touched, not changed
                kept.append(row)
                continue
            jobs.append((member.slug, photo, str(path), digest, stat.st_size, stat.st_mtime_ns))
    return kept, skipped, jobs


def update_cast(cast, cast_dir, out_path, pool, options, log):
    """Bring one cast's encodings file and thumbnails up to date.

    Returns (changed, photos encoded, photos removed, skip messages, encodings in the file)."""
    previous = read_cast_encodings(out_path) if out_path.exists() else CastEncodings.empty()
    detection = f"{options.min_face_percent:g}%/{options.min_face_pixels}px"
    kept, skipped, jobs = plan_cast(cast, cast_dir, previous, options.thumbs_dir, detection)
    rows = {"encodings": [previous.encodings[i] for i in kept], "members": [str(previous.members[i]) for i in kept],
            "photos": [str(previous.photos[i]) for i in kept], "hashes": [str(previous.hashes[i]) for i in kept],
            "sizes": [int(previous.sizes[i]) for i in kept], "mtimes": [int(previous.mtimes[i]) for i in kept]}
    new_skips = []
    encode = functools.partial(encode_photo, (options.max_pixels, options.min_face_percent, options.min_face_pixels))
    for done, (job, encoding, thumbnail, reason) in enumerate(pool.imap_unordered(encode, jobs) if jobs else [], 1):
        member, photo, _, digest, size, mtime = job
        log(f"  [{done}/{len(jobs)}] {cast.slug}/{member}/{photo}" + (f": skipped, {reason}" if reason else ""))
        if encoding is None:
            skipped[(member, photo)] = (digest, size, mtime, reason)
            new_skips.append(f"{member}/{photo}: {reason}")
            continue
        _write_atomically(thumb_path(options.thumbs_dir, cast.slug, member, photo), thumbnail)
        for name, value in zip(("encodings", "members", "photos", "hashes", "sizes", "mtimes"),
                               (encoding, member, photo, digest, size, mtime)):
            rows[name].append(value)
    current = {(m.slug, p) for m in cast.members.values() for p in m.photos}
    removed = sum(1 for key in zip(map(str, previous.members), map(str, previous.photos)) if key not in current)
    encoded = set(zip(rows["members"], rows["photos"]))
    cast_thumbs = pathlib.Path(options.thumbs_dir) / cast.slug
    for stale in sorted(cast_thumbs.glob("*/*.webp")) if cast_thumbs.is_dir() else []:
        if (stale.parent.name, stale.name[:-len(".webp")]) not in encoded:
            stale.unlink()
    # A member with no thumbnail left leaves no folder named for them either.
    for folder in sorted(cast_thumbs.iterdir()) if cast_thumbs.is_dir() else []:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    # Skips from other detection settings became jobs above, so they count as changes too.
    changed = bool(jobs) or removed > 0 or set(skipped) != set(previous.skipped) or not out_path.exists()
    if changed:
        write_cast_encodings(out_path, CastEncodings(
            np.asarray(rows["encodings"], dtype=np.float32).reshape(-1, 128), np.asarray(rows["members"], dtype=str),
            np.asarray(rows["photos"], dtype=str), np.asarray(rows["hashes"], dtype=str),
            np.asarray(rows["sizes"], dtype=np.int64), np.asarray(rows["mtimes"], dtype=np.int64), skipped,
            detection))
    return changed, len(jobs) - len(new_skips), removed, new_skips, len(rows["members"])


def main(argv=None):
    config = settings.load()
    parser = argparse.ArgumentParser(prog="create_encodings", description=__doc__.splitlines()[0])
    parser.add_argument("--casts-dir", default=config["CASTS_DIR"])
    parser.add_argument("--encodings-dir", default=config["ENCODINGS_DIR"])
    parser.add_argument("--thumbs-dir", help="face thumbnails (default: 'thumbs' beside the encodings dir)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="worker processes (default: all cores)")
    parser.add_argument("--min-face-percent", type=float, default=config["MIN_FACE_PERCENT"],
                        help="smallest face to find, in %% of a photo's longest side (default: %(default)s)")
    parser.add_argument("--min-face-pixels", type=int, default=config["MIN_FACE_PIXELS"],
                        help="...and never under this many pixels of the photo (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no per-photo progress")
    options = parser.parse_args(argv)
    try:
        settings.coerce("MIN_FACE_PERCENT", options.min_face_percent)
        settings.coerce("MIN_FACE_PIXELS", options.min_face_pixels)
    except settings.SettingsError as error:
        parser.error(str(error))
    options.max_pixels = config["MAX_IMAGE_PIXELS"]
    options.thumbs_dir = pathlib.Path(options.thumbs_dir or thumbs_dir_for(options.encodings_dir))
    started = time.monotonic()

    def log(message):
        if not options.quiet:
            print(message, file=sys.stderr, flush=True)

    casts_dir, encodings_dir = pathlib.Path(options.casts_dir), pathlib.Path(options.encodings_dir)
    if not casts_dir.is_dir():
        parser.error(f"casts dir {casts_dir} does not exist")
    try:
        # Validate every cast before writing anything: a bad folder loses nothing.
        catalog = load_catalog(casts_dir)
    except CastError as error:
        print(f"create_encodings: {error}", file=sys.stderr)
        return 2

    any_change = False
    # fork: workers inherit the loaded dlib models instead of loading them again.
    with multiprocessing.get_context("fork").Pool(max(1, options.jobs)) as pool:
        for cast in catalog.values():
            changed, added, removed, skips, total = update_cast(
                cast, casts_dir / cast.slug, encodings_dir / f"{cast.slug}.npz", pool, options, log)
            any_change |= changed
            summary = f"+{added} -{removed}, {total} encodings" if changed else f"up to date, {total} encodings"
            print(f"{cast.slug}: {summary}")
            for skip in skips:
                print(f"{cast.slug}: skipped {skip}")
    for stale in sorted(encodings_dir.glob("*.npz")) if encodings_dir.is_dir() else []:
        if stale.stem not in catalog:
            stale.unlink()
            shutil.rmtree(options.thumbs_dir / stale.stem, ignore_errors=True)
            any_change = True
            print(f"{stale.stem}: cast removed, encodings deleted")
    print(f"encodings: {'changed' if any_change else 'unchanged'} ({time.monotonic() - started:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
