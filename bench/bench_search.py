"""Top-k search over N known encodings: FaceIndex.search against face_recognition's
face_distance plus a sort, the same queries in the same run. Prints ratios, asserts nothing.

    .venv/bin/python bench/bench_search.py [--sizes 10000 100000 1000000] [--queries 20]
"""

import argparse
import time

import numpy as np

import face_recognition
from face_rec.encodings_store import CastEncodings
from face_rec.face_compare import FaceIndex


def best_of(function, queries, repeat=3):
    """Seconds per query, the best of a few rounds."""
    rounds = []
    for _ in range(repeat):
        started = time.perf_counter()
        for query in queries:
            function(query)
        rounds.append((time.perf_counter() - started) / len(queries))
    return min(rounds)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--k", type=int, default=3)
    options = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'N':>9} {'face_distance+sort ms':>22} {'FaceIndex ms':>13} {'ratio':>7}")
    for size in options.sizes:
        known = rng.normal(0, 0.1, (size, 128)).astype(np.float32)
        names = np.array([f"m{i}" for i in range(size)])  # one photo per member: the worst case
        index = FaceIndex({"bench": CastEncodings(known, names, names, names, np.zeros(size, np.int64),
                                                  np.zeros(size, np.int64), {})})
        known64 = known.astype(np.float64)  # what face_recognition users hold
        queries = rng.normal(0, 0.1, (options.queries, 128)).astype(np.float32)

        def baseline(query):
            return np.argsort(face_recognition.face_distance(known64, query))[:options.k]

        def indexed(query):
            return index.search(query, options.k)

        assert [m.member for m in indexed(queries[0])] == [f"m{i}" for i in baseline(queries[0])]
        slow, fast = best_of(baseline, queries), best_of(indexed, queries)
        print(f"{size:>9} {slow * 1e3:>22.2f} {fast * 1e3:>13.2f} {slow / fast:>6.1f}x")


if __name__ == "__main__":
    main()
