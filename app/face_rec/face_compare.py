"""The known faces closest to a face: all known encodings in one FaceIndex per process,
searched with one matrix product per query, and a 0..1 score from a distance."""

import dataclasses
import math

import numpy as np

from face_rec.encodings_store import ENCODING_SIZE


def similarity(distance, tolerance):
    """A 0..1 score from a face distance: 0.5 at the tolerance, near 1 for the same face."""
    if distance > tolerance:
        return max(0.0, (1.0 - distance) / ((1.0 - tolerance) * 2.0))
    linear = 1.0 - distance / (tolerance * 2.0)
    return min(1.0, linear + (1.0 - linear) * math.pow((linear - 0.5) * 2.0, 0.2))


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
