"""CPU per match, the app's match path in one process, on the face_recognition sdist's photos
and a 12 MP phone photo made from obama3.jpg: the old detection (1024 px, dlib's upsample 1,
a 2048 px scan) as the baseline, then MIN_FACE_PERCENT values (8 is the default). Prints CPU
ms (best of --repeat), the ratio to the baseline, faces found, and how far each encoding moves
from the baseline's, beside how far the baseline's own encoding moves when the same photo is
only saved again as a JPEG (quality 95): the noise any change of boxes lives in.

    .venv/bin/python bench/bench_detection.py [--percents 8 6.7 5 4] [--repeat 5]

The extra peak memory of a 12 MP match is measured in a fresh process per setting.
Run it with OPENBLAS_NUM_THREADS=2 to see what OpenBLAS's helper threads cost.

Then what the process boundary costs: the decode, and the whole match at 8 %, in this process
(load_photo) and in a decode process under the kernel's limits as the app does it
(face_rec/decode_process.py), wall-clock medians of --boundary-repeat runs, same photos, same run.
"""

import argparse
import io
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from face_rec.decode import load_photo
from face_rec.decode_process import DecodeProcess
from face_rec.settings import DEFAULTS
from face_rec.faces import _scale_box, face_encodings, find_faces, load_models

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import demo_cast  # noqa: E402
PHOTOS = ["obama2.jpg", "obama3.jpg", "biden.jpg", "obama.jpg", "obama_partial_face.jpg", "obama_partial_face2.jpg"]
MAX_PIXELS = 40_000_000


def jpeg(image, quality):
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def baseline_match(data):
    """The previous release: decode for 1024 px, shrink to 1024, dlib's upsample 1 (2048 px scan)."""
    image = load_photo(data, MAX_PIXELS, min_side=1024).pixels
    height, width = image.shape[:2]
    scale = min(1.0, 1024 / max(height, width))
    small = np.asarray(Image.fromarray(image).resize((round(width * scale), round(height * scale)),
                                                     Image.Resampling.BILINEAR)) if scale < 1 else image
    boxes = [_scale_box(box, 1 / scale, width, height) for box in load_models().face_locations(small, 1)]
    return face_encodings(image, boxes)


def match(data, percent, decode=load_photo):
    photo, boxes = find_faces(data, MAX_PIXELS, percent, 40, decode=decode)
    return face_encodings(photo.pixels, boxes)


def cpu_ms(function, *args, repeat):
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.process_time()
        result = function(*args)
        best = min(best, time.process_time() - started)
    return best * 1000, result


def moved(reference, encodings):
    if len(reference) != len(encodings):
        return "  -  "
    return f"{max(float(np.linalg.norm(a - b)) for a, b in zip(reference, encodings)):.3f}"


def wall_ms(function, *args, repeat):
    """The median wall-clock time of `repeat` calls, in ms."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - started)
    return float(np.median(times)) * 1000


def boundary(cases, repeat):
    """Decode, and a whole match at 8 %, in this process and through a bounded decode process."""
    decoder = DecodeProcess(DEFAULTS["DECODE_CPU_SECONDS"], DEFAULTS["DECODE_MEMORY_MB"])
    side = 1000  # detection_limit(8 %)
    print(f"process boundary (decode limits {DEFAULTS['DECODE_CPU_SECONDS']:g} s, {DEFAULTS['DECODE_MEMORY_MB']} MB), "
          f"median of {repeat}, wall ms")
    print(f"{'photo':24} {'decode':>7} {'bounded':>8} {'added':>6} {'match':>7} {'bounded':>8} {'added':>6} {'ratio':>6}")
    try:
        for name, data in cases:
            decoder.load_photo(data, MAX_PIXELS, side)  # the process started and warm
            plain = wall_ms(load_photo, data, MAX_PIXELS, side, repeat=repeat)
            bounded = wall_ms(decoder.load_photo, data, MAX_PIXELS, side, repeat=repeat)
            whole = wall_ms(match, data, 8.0, repeat=repeat)
            whole_bounded = wall_ms(match, data, 8.0, decoder.load_photo, repeat=repeat)
            print(f"{name:24} {plain:7.1f} {bounded:8.1f} {bounded - plain:6.1f} {whole:7.1f} {whole_bounded:8.1f} "
                  f"{whole_bounded - whole:6.1f} {whole_bounded / whole:5.2f}x")
    finally:
        decoder.close()


def peak_memory_mb(setting, photo_path):
    """Extra peak RSS of one 12 MP match in a fresh, warm process: the kernel's high-water mark
    (VmHWM) is reset just before the match. (ru_maxrss would not do: exec keeps the parent's.)"""
    code = f"""
import pathlib
import bench_detection as b
def kb(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key + ":"))
b.match((b.demo_cast.test_images() / "obama2.jpg").read_bytes(), 8.0)  # models loaded, as in a worker
data = pathlib.Path({str(photo_path)!r}).read_bytes()
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # resets VmHWM to the current RSS
before = kb("VmRSS")
b.baseline_match(data) if {setting!r} == 'baseline' else b.match(data, {setting!r})
print((kb("VmHWM") - before) / 1024)
"""
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                            cwd=pathlib.Path(__file__).parent).stdout
    return float(output.split()[-1])


def phone_photo():
    return jpeg(Image.open(demo_cast.test_images() / "obama3.jpg").resize((3024, 4032)), 90)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--percents", type=float, nargs="+", default=[8.0, 6.7, 5.0, 4.0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--boundary-repeat", type=int, default=30)
    parser.add_argument("--boundary-only", action="store_true", help="only the process boundary's cost")
    options = parser.parse_args()
    photos = demo_cast.test_images()
    cases = [(name, (photos / name).read_bytes()) for name in PHOTOS] + [("12 MP phone photo", phone_photo())]
    load_models()
    if options.boundary_only:
        boundary(cases, options.boundary_repeat)
        return
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, {os.cpu_count()} cores")
    header = f"{'photo':24} {'baseline ms':>11} " + " ".join(f"{f'{p:g} %: ms, ratio, moved':>26}" for p in
                                                                 options.percents) + "  q95 copy moved"
    print(header)
    for name, data in cases:
        base_ms, base = cpu_ms(baseline_match, data, repeat=options.repeat)
        cells = []
        for percent in options.percents:
            ms, encodings = cpu_ms(match, data, percent, repeat=options.repeat)
            cells.append(f"{ms:7.0f} {base_ms / ms:5.2f}x {len(encodings)}f {moved(base, encodings):>6}")
        noise = moved(base, baseline_match(jpeg(Image.open(io.BytesIO(data)), 95)))
        print(f"{name:24} {base_ms:9.0f}   " + " ".join(f"{cell:>26}" for cell in cells) + f"  {noise:>14}")
    with tempfile.NamedTemporaryFile(suffix=".jpg") as phone:
        phone.write(cases[-1][1])
        phone.flush()
        print("12 MP peak memory, MB over a warm worker: baseline "
              f"{peak_memory_mb('baseline', phone.name):.0f}, "
              + ", ".join(f"{p:g} %: {peak_memory_mb(p, phone.name):.0f}" for p in options.percents))
    boundary(cases, options.boundary_repeat)


if __name__ == "__main__":
    main()
