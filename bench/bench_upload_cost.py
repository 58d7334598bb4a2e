"""What a small upload that decodes huge costs a worker: each kind at the pixel cap or at its
format's budget (face_rec/decode.py), against obama2.jpg and the 12 MP phone photo of
bench_detection.py measured the same way in the same run.

    .venv/bin/python bench/bench_upload_cost.py [--cases NAME ...] [--repeat 1]

Every upload is generated here (nothing is committed) and posted to the match API, as a client
posts it (multipart), in a fresh process forked from one with the app and dlib's models loaded,
as uWSGI forks its workers, that has served one match: the answer's status, the CPU seconds of
the request and its peak memory over that idle worker (the kernel's high-water mark, VmHWM,
reset just before the request), each plus what the decode cost in the worker's decode process
(face_rec/decode_process.py: its CPU and peak over its idle size, as it measured them, or the
limits themselves when the kernel ended it for them). The bounds
(BENCHMARKS.md, Upload cost): peak memory at most 250 MB over idle, CPU at most 3x the 12 MP phone photo's, or a
413 before anything is decoded. tests/app/test_upload_cost.py holds a few of these cases to them.
"""

import argparse
import json
import os
import pathlib
import re
import struct
import subprocess
import sys
import tempfile
import zlib

from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))
import crafted_uploads  # noqa: E402
from crafted_uploads import encode  # noqa: E402
import demo_cast  # noqa: E402

MAX_MEMORY_MB = 250
MAX_CPU_RATIO = 3.0  # of the 12 MP phone photo's


def png(width, height, bit_depth, color_type, filter_type=4):
    """A PNG of zeros in which every row uses the Paeth filter, the costliest to undo: a few
    hundred KB however many pixels it claims."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    row = bytes([filter_type]) + bytes((width * channels * bit_depth + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    palette = chunk(b"PLTE", bytes(range(256)) * 3) if color_type == 3 else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
            + palette + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _segments(data):
    """(marker, start, end) of a JPEG's segments, a scan's end past its entropy-coded data."""
    pos, found = 2, []
    while pos + 4 <= len(data) and data[pos + 1] != 0xD9:
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if data[pos + 1] == 0xDA:
            end = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]").search(data, end).start()
        found.append((data[pos + 1], pos, end))
        pos = end
    return found


def many_scans(width, height, extra, which="ac"):
    """A flat progressive 4:4:4 JPEG with one of its scans repeated `extra` times: its smallest
    AC scan (31 bytes: every repeat passes over every luma block) or its first, the DC scan over
    all three components (the costliest per block)."""
    data = encode(Image.new("RGB", (width, height), (200, 120, 80)), "JPEG", quality=50, progressive=True,
                  subsampling=0)
    scans = [(start, end) for marker, start, end in _segments(data) if marker == 0xDA]
    start, end = scans[0] if which == "dc" else min(scans[1:], key=lambda s: s[1] - s[0])
    return data[:-2] + data[start:end] * extra + data[-2:]


def noise(size, fmt, limit=10_000_000, **params):
    """Random pixels, as many as fit in `limit` bytes of the format: the most data to decode."""
    import numpy as np
    rng = np.random.default_rng(1)
    width, height = size
    while True:
        data = encode(Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)), fmt, **params)
        if len(data) <= limit:
            return data
        width, height = int(width * 0.95), int(height * 0.95)


def jpeg_segments(count):
    """A small JPEG behind `count` empty APP15 segments, which Pillow reads one by one."""
    data = encode(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    return data[:2] + b"\xff\xef\x00\x02" * count + data[2:]


def png_chunks(count):
    """A small PNG with `count` empty private chunks before its pixels."""
    data = encode(Image.new("RGB", (64, 64), (1, 2, 3)), "PNG")
    chunk = struct.pack(">I", 0) + b"prIv" + struct.pack(">I", zlib.crc32(b"prIv"))
    return data[:33] + chunk * count + data[33:]


def phone_photo():
    """The 12 MP phone photo of bench_detection.py: obama3.jpg at 3024x4032, quality 90."""
    return encode(Image.open(demo_cast.test_images() / "obama3.jpg").resize((3024, 4032)), "JPEG", quality=90)


def face_grid(columns):
    """columns x columns copies of obama.jpg's face, each 166 px, on one photo."""
    import face_recognition
    import numpy as np
    image = Image.open(demo_cast.test_images() / "obama.jpg").convert("RGB")
    (top, right, bottom, left), = (4 * np.array(box) for box in face_recognition.face_locations(np.asarray(image.reduce(4))))
    margin = (bottom - top) // 2
    face = image.crop((left - margin, top - margin, right + margin, bottom + margin)).resize((166, 166))
    grid = Image.new("RGB", (166 * columns, 166 * columns), (230, 230, 230))
    for i in range(columns * columns):
        grid.paste(face, (166 * (i % columns), 166 * (i // columns)))
    return encode(grid, "JPEG", quality=90)


def flat(mode, size, fmt, **params):
    color = {"RGB": (200, 120, 80), "RGBA": (200, 120, 80, 128), "CMYK": (20, 60, 80, 10)}[mode]
    return lambda: encode(Image.new(mode, size, color), fmt,
                          **params)


# name: (what, how to make it). At the 40 MP cap (6324x6324) or at the format's budget.
CASES = {
    "obama2.jpg": ("the baseline: a 1200x626 photo", lambda: (demo_cast.test_images() / "obama2.jpg").read_bytes()),
    "phone 12 MP": ("3024x4032 JPEG, the CPU bound's unit", phone_photo),
    "RGBA PNG 40 MP": ("6324x6324 flat RGBA, Paeth rows", lambda: png(6324, 6324, 8, 6)),
    "RGBA PNG budget": ("3535x3535 flat RGBA, 50 MB of pixel data", lambda: png(3535, 3535, 8, 6)),
    "RGB PNG budget": ("4000x4000 flat RGB", lambda: png(4000, 4000, 8, 2)),
    "RGBA64 PNG budget": ("2495x2495 flat 16-bit RGBA", lambda: png(2495, 2495, 16, 6)),
    "grey16 PNG 40 MP": ("6324x6324 16-bit grey", lambda: png(6324, 6324, 16, 0)),
    "grey16 PNG budget": ("4000x4000 16-bit grey (the decoded-pixels budget)", lambda: png(4000, 4000, 16, 0)),
    "palette PNG 40 MP": ("6324x6324 palette", lambda: png(6324, 6324, 8, 3)),
    "palette PNG budget": ("4000x4000 palette", lambda: png(4000, 4000, 8, 3)),
    "narrow PNG budget": ("16000x1000 palette: not reduced", lambda: png(16000, 1000, 8, 3)),
    "WebP 40 MP": ("6324x6324 flat lossy", flat("RGB", (6324, 6324), "WEBP", quality=50)),
    "WebP budget": ("4096x3072 flat lossy", flat("RGB", (4096, 3072), "WEBP", quality=50)),
    "WebP alpha budget": ("4096x3072 flat lossless RGBA", flat("RGBA", (4096, 3072), "WEBP", lossless=True)),
    "JPEG 40 MP": ("6324x6324 flat, decoded at 1/4", flat("RGB", (6324, 6324), "JPEG", quality=50)),
    "CMYK JPEG 40 MP": ("6324x6324 flat CMYK, decoded at 1/4", flat("CMYK", (6324, 6324), "JPEG", quality=50)),
    "narrow JPEG budget": ("16000x1000 flat: not reduced", flat("RGB", (16000, 1000), "JPEG", quality=50)),
    "progressive JPEG 40 MP": ("6324x6324 flat 4:4:4, 10 scans", flat("RGB", (6324, 6324), "JPEG", quality=50,
                                                                       progressive=True, subsampling=0)),
    "progressive JPEG budget": ("4080x4080 flat 4:4:4, 10 scans: 100 MB of coefficients",
                                flat("RGB", (4080, 4080), "JPEG", quality=50, progressive=True, subsampling=0)),
    "progressive 4:2:0 budget": ("5760x5760 flat 4:2:0, 10 scans", flat("RGB", (5760, 5760), "JPEG", quality=50,
                                                                       progressive=True, subsampling=2)),
    "JPEG of 37 scans": ("2000x2000 progressive 4:4:4, its DC scan repeated: 5.9 M block scans",
                            lambda: many_scans(2000, 2000, 27, "dc")),
    "JPEG of 400 scans": ("4000x4000 progressive, an AC scan repeated", lambda: many_scans(4000, 4000, 400)),
    "JPEG of 10,000 scans": ("4000x4000 progressive, an AC scan repeated", lambda: many_scans(4000, 4000, 10_000)),
    "noise JPEG 10 MB": ("random pixels, quality 95 4:4:4, up to 10 MB", lambda: noise((3000, 3000), "JPEG", quality=95,
                                                                                   subsampling=0)),
    "noise WebP budget": ("random pixels, quality 20, up to 3 MB", lambda: noise((3200, 2400), "WEBP", 3_000_000,
                                                                               quality=20)),
    "noise WebP 10 MB": ("random pixels, quality 90, up to 10 MB", lambda: noise((4096, 3072), "WEBP", quality=90)),
    "noise PNG 10 MB": ("random pixels, up to 10 MB", lambda: noise((2000, 2000), "PNG")),
    "JPEG of 2M segments": ("64x64 behind 9 MB of empty segments", lambda: jpeg_segments(2_250_000)),
    "PNG of 750k chunks": ("64x64 behind 9 MB of empty chunks", lambda: png_chunks(750_000)),
    "36 faces": ("6x6 faces of 166 px, all found", lambda: face_grid(6)),
}
# Written to disagree with header readers (issue 27): bench/crafted_uploads.py.
CRAFTED = {name: (what, make) for name, (what, make, _, _) in crafted_uploads.CRAFTED.items()}
CASES.update(CRAFTED)

WORKER = """
import gc, io, json, os, pathlib, sys, time
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart
from face_rec import create_app

def kb(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key + ":"))

def multipart(data):
    boundary, body = encode_multipart({"image": FileStorage(io.BytesIO(data), "upload")})
    return body, f"multipart/form-data; boundary={boundary}"

gallery, warm, uploads = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]).read_bytes(), sys.argv[3:]
app = create_app({"CASTS_DIR": gallery / "casts", "ENCODINGS_DIR": gallery / "encodings"})
for upload in uploads:
    # One fresh worker per upload, forked from a process with the app loaded, as uWSGI forks
    # its workers; it serves one match first, as a worker that has been serving has.
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        client = app.test_client()
        body, content_type = multipart(warm)
        assert client.post("/api/v1/match", data=body, content_type=content_type).status_code == 200
        body, content_type = multipart(pathlib.Path(upload).read_bytes())
        gc.collect()
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current RSS
        idle = kb("VmRSS")
        started = time.process_time()
        decoder = app.extensions["face_rec_decoder"]
        decoder.last_cost = None
        response = client.post("/api/v1/match", data=body, content_type=content_type)
        cpu = time.process_time() - started
        # The decode's own cost, in its process (the limits themselves when it was ended for them).
        decode = decoder.last_cost
        decode_cpu, decode_mb = (decode.cpu_s, decode.peak_mb) if decode else (0.0, 0.0)
        result = {"status": response.status_code, "cpu_s": cpu + decode_cpu,
                  "peak_mb": (kb("VmHWM") - idle) / 1024 + decode_mb, "idle_mb": idle / 1024,
                  "decode_cpu_s": decode_cpu, "decode_mb": decode_mb, "over_limit": bool(decode and decode.over_limit),
                  "message": (response.json.get("error") or {}).get("message", "")}
        os.write(write, json.dumps(result).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        print(answer.read(), flush=True)
    os.wait()
"""


def build_gallery(root):
    """The demo cast and its encodings, as the app's tests use them."""
    from face_rec.create_encodings import main as create_encodings
    demo_cast.build_demo_cast(root / "casts")
    assert create_encodings(["--casts-dir", str(root / "casts"), "--encodings-dir", str(root / "encodings"),
                             "--quiet"]) == 0
    return root


def measure_cases(names, repeat=1, gallery=None):
    """{name: {status, cpu_s, peak_mb, idle_mb, message, bytes}} for the named cases, in fresh
    worker-like processes (see WORKER); with repeat, the run of least CPU of each. gallery: a
    built demo cast (casts/, encodings/), else one is built."""
    with tempfile.TemporaryDirectory() as tmp:
        gallery = gallery or build_gallery(pathlib.Path(tmp) / "gallery")
        paths, sizes = [], {}
        for number, name in enumerate(names):
            data = CASES[name][1]()
            sizes[name] = len(data)
            paths.append(pathlib.Path(tmp) / f"{number}.upload")
            paths[-1].write_bytes(data)
        output = subprocess.run([sys.executable, "-c", WORKER, str(gallery), str(demo_cast.test_images() / "obama2.jpg"),
                                 *map(str, paths * repeat)], check=True, capture_output=True, text=True).stdout
    runs = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    results = {}
    for name, run in zip(names * repeat, runs):
        if name not in results or run["cpu_s"] < results[name]["cpu_s"]:
            results[name] = dict(run, bytes=sizes[name])
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--repeat", type=int, default=1)
    options = parser.parse_args()
    names = ["obama2.jpg", "phone 12 MP"] + [n for n in options.cases if n not in ("obama2.jpg", "phone 12 MP")]
    results = measure_cases(names, options.repeat)
    base, phone = results["obama2.jpg"], results["phone 12 MP"]
    print(f"{os.cpu_count()} cores; idle worker {base['idle_mb']:.0f} MB; bounds: +{MAX_MEMORY_MB} MB, "
          f"{MAX_CPU_RATIO:g}x the phone photo's CPU ({MAX_CPU_RATIO * phone['cpu_s'] * 1000:.0f} ms here)")
    print(f"{'upload':24} {'bytes':>10} {'status':>6} {'CPU ms':>7} {'x obama2':>8} {'x phone':>7} "
          f"{'peak MB':>7} {'x obama2':>8}  within  what")
    for name in names:
        r = results[name]
        within = r["status"] == 413 or (r["peak_mb"] <= MAX_MEMORY_MB and r["cpu_s"] <= MAX_CPU_RATIO * phone["cpu_s"])
        print(f"{name:24} {r['bytes']:10,} {r['status']:6} {r['cpu_s'] * 1000:7.0f} {r['cpu_s'] / base['cpu_s']:8.2f} "
              f"{r['cpu_s'] / phone['cpu_s']:7.2f} {r['peak_mb']:7.0f} {r['peak_mb'] / max(base['peak_mb'], 1):8.1f}  "
              f"{'yes' if within else 'NO':6}  {CASES[name][0]}")
    for name in names:
        if results[name]["message"]:
            print(f"  {name}: {results[name]['status']} {results[name]['message']}")


if __name__ == "__main__":
    main()
