"""Encodings files: `<encodings_dir>/<cast>.npz`, one per cast, written by create_encodings and
read by the app. roles/faceapp/files/forget_member.py and playbooks/tasks/smoke.yml read them
too, with numpy alone: keep the arrays' names and types."""

import dataclasses
import os
import pathlib
import tempfile

import numpy as np

ENCODING_SIZE = 128


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
