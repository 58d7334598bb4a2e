"""Face detection at full size against detection on a downscaled copy (boxes mapped back),
on the real photos of the face_recognition sdist. Prints times, ratios and whether the same
faces were found.

    .venv/bin/python bench/bench_downscale.py [--sides 1024 800 640]
"""

import argparse
import importlib.util
import pathlib
import time

import numpy as np
from PIL import Image

import face_recognition
from face_rec.face_compare import face_encodings, face_locations

ROOT = pathlib.Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("demo_cast", ROOT / "scripts" / "demo_cast.py")
demo_cast = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo_cast)


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sides", type=int, nargs="+", default=[1024, 800, 640])
    options = parser.parse_args()
    photos = demo_cast.test_images()
    for name in ("obama3.jpg", "biden.jpg", "obama.jpg"):
        image = np.asarray(Image.open(photos / name).convert("RGB"))
        full_time, full_boxes = timed(face_recognition.face_locations, image)
        full_encodings = face_encodings(image, full_boxes)
        print(f"{name} {image.shape[1]}x{image.shape[0]}: full size {full_time:.2f} s, {len(full_boxes)} face(s)")
        for side in options.sides:
            small_time, boxes = timed(face_locations, image, side)
            drift = max((float(np.linalg.norm(a - b)) for a, b in zip(face_encodings(image, boxes), full_encodings)),
                        default=0.0)
            print(f"  longest side {side}: {small_time:.2f} s ({full_time / small_time:.1f}x faster), "
                  f"{len(boxes)} face(s), encoding distance to full size {drift:.3f}")


if __name__ == "__main__":
    main()
