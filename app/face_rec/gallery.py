"""The casts and encodings a process serves, loaded once and reloaded when files change.

The app's one Gallery lives in app.extensions; views read it through current_snapshot()."""

import dataclasses
import pathlib
import threading
import time

from flask import current_app

from face_rec.casts import load_catalog
from face_rec.encodings_store import read_cast_encodings
from face_rec.face_compare import FaceIndex

EXTENSION = "face_rec"  # the Gallery's key in app.extensions


@dataclasses.dataclass(frozen=True)
class Snapshot:
    catalog: dict
    index: FaceIndex
    signature: tuple
    encoded: frozenset = frozenset()  # (cast, member, photo) with an encoding, hence a face thumbnail


class Gallery:
    """Holds one Snapshot; swaps in a new one when the encodings files change on disk.

    create_encodings replaces files atomically, so a stat of the encodings dir at most once a
    second is all it takes to pick up new encodings without a restart."""

    recheck_seconds = 1.0

    def __init__(self, casts_dir, encodings_dir):
        self.casts_dir = pathlib.Path(casts_dir)
        self.encodings_dir = pathlib.Path(encodings_dir)
        self._lock = threading.Lock()
        self._checked_at = 0.0
        self._snapshot = self._load(self._signature())

    def _signature(self):
        if not self.encodings_dir.is_dir():
            return ()
        stats = ((p.name, p.stat()) for p in self.encodings_dir.glob("*.npz"))
        return tuple(sorted((name, stat.st_mtime_ns, stat.st_size) for name, stat in stats))

    def _load(self, signature):
        catalog = load_catalog(self.casts_dir)
        by_cast = {name[:-4]: read_cast_encodings(self.encodings_dir / name) for name, _, _ in signature
                   if name[:-4] in catalog}
        encoded = frozenset((cast, str(member), str(photo)) for cast, data in by_cast.items()
                            for member, photo in zip(data.members, data.photos))
        return Snapshot(catalog, FaceIndex(by_cast), signature, encoded)

    def snapshot(self):
        now = time.monotonic()
        if now - self._checked_at >= self.recheck_seconds and self._lock.acquire(blocking=False):
            try:
                self._checked_at = now
                signature = self._signature()
                if signature != self._snapshot.signature:
                    self._snapshot = self._load(signature)
            finally:
                self._lock.release()
        return self._snapshot


def init_app(app):
    """Load the app's gallery now, so that an app that exists is ready to answer."""
    app.extensions[EXTENSION] = Gallery(app.config["CASTS_DIR"], app.config["ENCODINGS_DIR"])


def current_snapshot():
    """The casts and encodings the current app serves, as of now."""
    return current_app.extensions[EXTENSION].snapshot()
