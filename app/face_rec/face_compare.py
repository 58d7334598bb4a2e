"""Faces in a photo, and the known faces closest to them.

Photos are decoded in memory (face_rec.decode: at a bounded cost, no larger than detection
needs), downscaled for detection, and encoded with face_recognition (dlib). Known encodings live
in one FaceIndex per process, searched with one matrix product per query.
"""

import dataclasses
import math
import os
import pathlib
import tempfile

import numpy as np
from PIL import Image, ImageFile

from face_rec.decode import ImageError, Photo, load_photo  # ImageError, Photo: what find_faces' callers get

ENCODING_SIZE = 128


def load_models():
    """face_recognition, with dlib's models loaded (~100 MB, a few seconds): imported on first
    use, so a command with nothing to encode does not pay for it."""
    import face_recognition  # noqa: PLC0415

    # face_recognition turns this on when imported; we want truncated uploads refused.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    return face_recognition


# dlib's frontal face detector scans 80x80 px windows over an image pyramid: the smallest face
# it finds is 80 px of the image it is given.
DETECTOR_WINDOW = 80


def detection_limit(min_face_percent):
    """The longest side detection needs when faces may be as small as min_face_percent of a
    photo's longest side: 1000 px for 8 %. Bigger photos are shrunk to it (and decoded no
    larger than needed); see detection_side."""
    return max(1, round(DETECTOR_WINDOW * 100 / min_face_percent))


def detection_side(longest, min_face_percent, min_face_pixels):
    """The longest side a photo is resized to before detection, so that a face of
    min_face_percent of its longest side, but never one under min_face_pixels of the photo,
    fills the detector's window. A large photo shrinks to detection_limit; a small one grows,
    at most by DETECTOR_WINDOW / min_face_pixels (2x for 40 px, as dlib's usual upsample)."""
    return max(1, min(detection_limit(min_face_percent), round(longest * DETECTOR_WINDOW / min_face_pixels)))


def face_locations(image, min_face_percent, min_face_pixels):
    """Face boxes (top, right, bottom, left) in the image's own pixels.

    HOG detection costs grow with the pixels scanned, and the detector's own pyramid already
    looks for every face bigger than its window, so the photo is resized once to the side
    where the smallest promised face fills that window and scanned with no upsampling: a
    1000 px scan for faces of 8 % of the side instead of the 2048 px of 1024 px upsampled
    once (about 4x less CPU; every face of 8 % or more is found the same way)."""
    height, width = image.shape[:2]
    side = detection_side(max(height, width), min_face_percent, min_face_pixels)
    scale = side / max(height, width)
    if scale != 1.0:
        scanned = np.asarray(Image.fromarray(image).resize(
            (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR))
    else:
        scanned = image
    boxes = load_models().face_locations(scanned, number_of_times_to_upsample=0)
    return [_scale_box(box, 1.0 / scale, width, height) for box in boxes]


def find_faces(data, max_pixels, min_face_percent, min_face_pixels):
    """(photo, face boxes) of an uploaded photo's bytes: decoded no larger than detection needs,
    then detected. The boxes are in photo.pixels (photo.photo_box gives them in the photo's own
    pixels). Raises ImageError for what load_photo refuses."""
    photo = load_photo(data, max_pixels, min_side=detection_limit(min_face_percent))
    return photo, face_locations(photo.pixels, min_face_percent, min_face_pixels)


def _scale_box(box, factor, width, height):
    top, right, bottom, left = box
    return (max(0, round(top * factor)), min(width, round(right * factor)),
            min(height, round(bottom * factor)), max(0, round(left * factor)))


def face_encodings(image, boxes):
    """One 128-d float32 encoding per box, computed on the full-size image."""
    return [np.asarray(e, dtype=np.float32) for e in load_models().face_encodings(image, boxes)]


def similarity(distance, tolerance):
    """A 0..1 score from a face distance: 0.5 at the tolerance, near 1 for the same face."""
    if distance > tolerance:
        return max(0.0, (1.0 - distance) / ((1.0 - tolerance) * 2.0))
    linear = 1.0 - distance / (tolerance * 2.0)
    return min(1.0, linear + (1.0 - linear) * math.pow((linear - 0.5) * 2.0, 0.2))


# --- Stored encodings -------------------------------------------------------------------------

@dataclasses.dataclass
class CastEncodings:
    """One cast's encodings file: rows of (member, photo, hash, size, mtime) and their encodings,
    plus the photos that were skipped (no face, several faces) with the reason, and the
    detection settings those skips were decided with."""

    encodings: np.ndarray  # (n, 128) float32
    members: np.ndarray
    photos: np.ndarray
    hashes: np.ndarray
    sizes: np.ndarray
    mtimes: np.ndarray
    skipped: dict  # (member, photo) -> (hash, size, mtime, reason)
    detection: str = ""  # e.g. "8%/40px"; "" in files from before it was recorded

    @classmethod
    def empty(cls):
        strings = np.array([], dtype=str)
        return cls(np.zeros((0, ENCODING_SIZE), np.float32), strings, strings, strings,
                   np.array([], np.int64), np.array([], np.int64), {})


def read_cast_encodings(path):
    """Load an encodings file written by write_cast_encodings."""
    with np.load(path, allow_pickle=False) as data:
        skipped = {(m, p): (h, int(s), int(t), r) for m, p, h, s, t, r in zip(
            data["skipped_members"], data["skipped_photos"], data["skipped_hashes"],
            data["skipped_sizes"], data["skipped_mtimes"], data["skipped_reasons"])}
        return CastEncodings(data["encodings"].astype(np.float32, copy=False), data["members"], data["photos"],
                             data["hashes"], data["sizes"], data["mtimes"], skipped,
                             str(data["detection"]) if "detection" in data.files else "")


def write_cast_encodings(path, cast_encodings):
    """Write atomically: readers see the old file or the new one, never half of one."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    skipped = sorted(cast_encodings.skipped.items())
    columns = list(zip(*[(m, p, h, s, t, r) for (m, p), (h, s, t, r) in skipped])) or [()] * 6
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez(file, encodings=cast_encodings.encodings.astype(np.float32),
                     members=np.asarray(cast_encodings.members, dtype=str),
                     photos=np.asarray(cast_encodings.photos, dtype=str),
                     hashes=np.asarray(cast_encodings.hashes, dtype=str),
                     sizes=np.asarray(cast_encodings.sizes, dtype=np.int64),
                     mtimes=np.asarray(cast_encodings.mtimes, dtype=np.int64),
                     skipped_members=np.asarray(columns[0], dtype=str),
                     skipped_photos=np.asarray(columns[1], dtype=str),
                     skipped_hashes=np.asarray(columns[2], dtype=str),
                     skipped_sizes=np.asarray(columns[3], dtype=np.int64),
                     skipped_mtimes=np.asarray(columns[4], dtype=np.int64),
                     skipped_reasons=np.asarray(columns[5], dtype=str),
                     detection=np.asarray(cast_encodings.detection, dtype=str))
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o600)  # faces of real people: the app's user alone (uWSGI runs as it)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# --- Search -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Match:
    cast: str
    member: str
    distance: float
    photo: str  # the member's photo closest to the face


class FaceIndex:
    """All known encodings in one float32 matrix, grouped by (cast, member).

    A query's squared distances to every row are |e|^2 - 2 e.q + |q|^2: one matrix-vector
    product against precomputed norms, then one minimum per member and a partial sort."""

    def __init__(self, by_cast):
        """by_cast: {cast slug: CastEncodings}."""
        blocks, self.member_keys, starts, self.cast_ranges, photos = [], [], [], {}, []
        row = 0
        for cast in sorted(by_cast):
            data = by_cast[cast]
            order = np.lexsort((data.photos, data.members)) if len(data.members) else np.array([], int)
            members = data.members[order]
            first_member = len(self.member_keys)
            for i in range(len(members)):
                if i == 0 or members[i] != members[i - 1]:
                    starts.append(row + i)
                    self.member_keys.append((cast, str(members[i])))
            self.cast_ranges[cast] = (first_member, len(self.member_keys))
            blocks.append(data.encodings[order])
            photos.extend(str(p) for p in data.photos[order])
            row += len(order)
        self.encodings = np.ascontiguousarray(np.concatenate(blocks) if blocks else
                                              np.zeros((0, ENCODING_SIZE), np.float32), dtype=np.float32)
        self.squared_norms = np.einsum("ij,ij->i", self.encodings, self.encodings)
        self.member_starts = np.asarray(starts, dtype=np.int64)
        self.photos = photos

    def __len__(self):
        return len(self.encodings)

    def counts_by_cast(self):
        """{cast slug: encodings known for it}."""
        counts = {}
        for cast, (first, last) in self.cast_ranges.items():
            lo = int(self.member_starts[first]) if first < len(self.member_keys) else len(self.encodings)
            hi = int(self.member_starts[last]) if last < len(self.member_keys) else len(self.encodings)
            counts[cast] = hi - lo if last > first else 0
        return counts

    def search(self, query, k, cast=None):
        """The k members closest to query (a 128-d encoding), nearest first, in one cast or all."""
        first, last = self.cast_ranges.get(cast, (0, 0)) if cast else (0, len(self.member_keys))
        if first == last or k <= 0:
            return []
        lo = int(self.member_starts[first])
        hi = int(self.member_starts[last]) if last < len(self.member_keys) else len(self.encodings)
        query = np.asarray(query, dtype=np.float32)
        squared = self.squared_norms[lo:hi] - 2.0 * (self.encodings[lo:hi] @ query) + float(query @ query)
        starts = self.member_starts[first:last] - lo
        per_member = np.minimum.reduceat(squared, starts)
        k = min(k, len(per_member))
        nearest = np.argpartition(per_member, k - 1)[:k]
        nearest = nearest[np.argsort(per_member[nearest], kind="stable")]
        ends = np.append(starts[1:], hi - lo)
        matches = []
        for m in nearest:
            photo_row = lo + starts[m] + int(np.argmin(squared[starts[m]:ends[m]]))
            cast_slug, member = self.member_keys[first + m]
            matches.append(Match(cast_slug, member, math.sqrt(max(0.0, float(per_member[m]))),
                                 self.photos[photo_row]))
        return matches
