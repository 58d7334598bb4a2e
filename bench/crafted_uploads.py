"""Uploads written to disagree with header readers (issue 27): each cost a worker up to 38x a
photo's CPU or +350 MB before decode.py walked headers as Pillow does and refused what no photo
needs. Built by code (nothing is committed), with Pillow and numpy only, so the fleet scenario
can build them on a test host with the app's own venv:

    python crafted_uploads.py FOLDER    # writes each kind there, named for its Content-Type

bench_upload_cost.py measures them, tests/app/test_upload_cost.py holds them to a fraction of a
photo's cost, and the fleet scenario sends them through its balancer under the steady load.
"""

import io
import pathlib
import struct
import sys
import zlib

from PIL import Image


def encode(image, fmt, **params):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_inflating_chunks(kind, count=5_000):
    """A 64x64 PNG carrying `count` chunks that each inflate to just under 1 MiB (Pillow's
    per-chunk cap here): ICC profiles (iCCP), or compressed text whose keyword is empty (zTXt,
    which Pillow then keeps out of its text-memory count). ~5 MB of file, 5 GB of inflation."""
    data = encode(Image.new("RGB", (64, 64), (1, 2, 3)), "PNG")
    payload = zlib.compress(bytes(1024 * 1024 - 1), 9)
    body = b"face\0\0" + payload if kind == b"iCCP" else b"\0\0" + payload
    return data[:33] + _png_chunk(kind, body) * count + data[33:]


def jpeg_restarts(count=4_900_000):
    """A 64x64 JPEG behind `count` restart markers (FFD0): no length, so a walker that skips them
    uncounted passes them, and Pillow's marker loop visits each. 9.8 MB."""
    data = encode(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    return data[:2] + b"\xff\xd0" * count + data[2:]


def jpeg_second_soi(count=140_000):
    """A 64x64 JPEG whose header starts again (a second SOI, which has no length: Pillow reads on
    after it), then `count` quantization tables that Pillow parses one by one in Python."""
    data = encode(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    return data[:2] + b"\xff\xd8" + (b"\xff\xdb\x00\x43\x00" + bytes(range(1, 65))) * count + data[2:]


def webp_lossless_noise(alpha=False):
    """Random pixels as a lossless WebP (or a lossy one whose transparent layer is compressed
    losslessly, libwebp's default): streams that declare their own decoding tables."""
    import numpy as np
    rng = np.random.default_rng(2)
    image = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    if alpha:
        image.putalpha(Image.linear_gradient("L").resize(image.size))  # smooth: compressed, not stored
        return encode(image, "WEBP", quality=80)
    return encode(image, "WEBP", lossless=True)


# name: (what, how to make it, Content-Type, file name)
CRAFTED = {
    "PNG of 5,000 ICC profiles": ("64x64, 5,000 iCCP chunks of ~1 MiB inflated, 5 MB",
                                  lambda: png_inflating_chunks(b"iCCP"), "image/png", "iccp.png"),
    "PNG of 5,000 unnamed zTXt": ("64x64, 5,000 zTXt chunks of ~1 MiB inflated, empty keywords, 5 MB",
                                  lambda: png_inflating_chunks(b"zTXt"), "image/png", "ztxt.png"),
    "JPEG of 4.9M restarts": ("64x64 behind 9.8 MB of RST markers", jpeg_restarts, "image/jpeg", "restarts.jpg"),
    "JPEG with a second SOI": ("64x64, SOI again, then 9.7 MB of quantization tables", jpeg_second_soi,
                               "image/jpeg", "second-soi.jpg"),
    "lossless WebP": ("400x300 random pixels, lossless", webp_lossless_noise, "image/webp", "lossless.webp"),
    "WebP, lossless alpha": ("400x300 random RGBA, lossy colour, lossless alpha", lambda: webp_lossless_noise(True),
                             "image/webp", "lossless-alpha.webp"),
}


def main(folder):
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for _, make, _, name in CRAFTED.values():
        (folder / name).write_bytes(make())


if __name__ == "__main__":
    main(sys.argv[1])
