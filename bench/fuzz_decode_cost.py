"""Coverage-guided fuzzing of the upload decode path (atheris, libFuzzer), whose oracle is the
cost: an input fails when decode.load_photo lets it through to Pillow and decoding it costs more
than the bound (settings.py's DECODE_CPU_SECONDS of CPU, DECODE_MEMORY_MB over the idle
process), not only when something crashes. The header readers are there to refuse what would
cost that much, cheaply and with the reason; the kernel's limits on the decode process
(face_rec/decode_process.py) are the backstop for what they miss, and this finds what they miss.

    .venv/bin/python bench/fuzz_decode_cost.py [-runs=N | -max_total_time=S] [-seed=N] [corpus dir ...]

Each input is decoded here, instrumented (so Python's share runs slower than in production);
one that looks over the bound is decoded again in a decode process without instrumentation
and with generous limits, and only what that measures fails. A failure writes the input
(libFuzzer's crash-<sha1> file) and says what it cost. With no corpus folder, a seed corpus of
small photos of every format and pixel mode, and of the crafted kinds of bench_upload_cost.py
made small, is generated in a temporary folder (nothing is committed). tests/app/test_fuzz_cost.py
runs a short seeded run in make test; BENCHMARKS.md has a longer one's figures.
"""

import io
import pathlib
import struct
import sys
import tempfile
import time
import zlib

import atheris

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "app"))

with atheris.instrument_imports():
    from PIL import Image, ImageFile, JpegImagePlugin, MpoImagePlugin, PngImagePlugin, TiffImagePlugin  # noqa: F401
    from PIL import WebPImagePlugin  # noqa: F401

    from face_rec import decode

from face_rec.decode_process import DecodeProcess, _reset_peak, _status_kb  # noqa: E402
from face_rec.settings import DEFAULTS  # noqa: E402

CPU_BOUND = DEFAULTS["DECODE_CPU_SECONDS"]
MEMORY_BOUND_MB = DEFAULTS["DECODE_MEMORY_MB"]
MAX_PIXELS = DEFAULTS["MAX_IMAGE_PIXELS"]
MIN_SIDE = 1000  # detection_limit(8 %), what the match path decodes to
_confirm = None
# Inputs tried, refused by the header readers, decoded; decoded again uninstrumented because
# they looked over the bound; the costliest seen here (instrumented) and in confirmation.
_stats = {"inputs": 0, "refused": 0, "decoded": 0, "confirmed": 0, "worst_cpu_s": 0.0, "worst_peak_mb": 0.0,
          "worst_confirmed_cpu_s": 0.0, "worst_confirmed_peak_mb": 0.0}


class CostOverBound(Exception):
    """An input the header readers let through whose decode costs more than the bound."""


def check(data):
    """The oracle: decode one input as the match path does; fail if it cost more than the bound."""
    _stats["inputs"] += 1
    if _stats["inputs"] % 1000 == 0:
        print(f"fuzz_decode_cost: {_stats}", flush=True)
    _reset_peak()
    before = _status_kb("VmRSS")
    started = time.process_time()
    try:
        decode.load_photo(data, MAX_PIXELS, MIN_SIDE)
        _stats["decoded"] += 1
    except decode.ImageError:
        _stats["refused"] += 1
    except MemoryError:
        pass  # measured below like any other cost
    cpu = time.process_time() - started
    peak_mb = max(0, _status_kb("VmHWM") - before) / 1024
    _stats["worst_cpu_s"] = round(max(_stats["worst_cpu_s"], cpu), 4)
    _stats["worst_peak_mb"] = round(max(_stats["worst_peak_mb"], peak_mb), 1)
    if cpu > CPU_BOUND or peak_mb > MEMORY_BOUND_MB:
        # Instrumented Python is slower: measure again as production decodes, then judge.
        cost = confirm(data)
        _stats["confirmed"] += 1
        _stats["worst_confirmed_cpu_s"] = max(_stats["worst_confirmed_cpu_s"], cost.cpu_s)
        _stats["worst_confirmed_peak_mb"] = max(_stats["worst_confirmed_peak_mb"], cost.peak_mb)
        if cost.cpu_s > CPU_BOUND or cost.peak_mb > MEMORY_BOUND_MB:
            raise CostOverBound(f"{len(data):,} bytes, {data[:16]!r}...: decoding it cost {cost.cpu_s:.2f} s of CPU "
                                f"and +{cost.peak_mb:.0f} MB; the bound is {CPU_BOUND:g} s and {MEMORY_BOUND_MB} MB")


def confirm(data):
    global _confirm
    if _confirm is None:
        _confirm = DecodeProcess(cpu_seconds=60, memory_mb=4096)
    try:
        _confirm.load_photo(data, MAX_PIXELS, MIN_SIDE)
    except decode.ImageError:
        pass
    return _confirm.last_cost


def _encode(image, fmt, **params):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def seed_corpus(folder):
    """Small inputs of every format, pixel mode and header feature the readers handle, and the
    crafted kinds of issue 27 in small: what mutation starts from."""
    import numpy as np
    rng = np.random.default_rng(7)
    photo = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    jpeg = _encode(photo, "JPEG")
    png = _encode(photo, "PNG")
    seeds = {
        "baseline.jpg": jpeg,
        "progressive.jpg": _encode(photo, "JPEG", progressive=True, subsampling=0),
        "exif.jpg": _encode(photo, "JPEG", exif=exif.tobytes()),
        "cmyk.jpg": _encode(photo.convert("CMYK"), "JPEG"),
        "grey.jpg": _encode(photo.convert("L"), "JPEG"),
        "restarts.jpg": _encode(photo, "JPEG", restart_marker_blocks=1),
        "rgb.png": png,
        "rgba.png": _encode(photo.convert("RGBA"), "PNG"),
        "palette.png": _encode(photo.convert("P"), "PNG", transparency=3),
        "grey16.png": _encode(Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 200), "PNG"),
        "exif.png": _encode(photo, "PNG", exif=exif.tobytes()),
        "lossy.webp": _encode(photo, "WEBP", quality=60),
        "exif.webp": _encode(photo, "WEBP", exif=exif.tobytes()),
        "icc.png": png[:33] + _png_chunk(b"iCCP", b"p\0\0" + zlib.compress(bytes(4000))) + png[33:],
        "ztxt.png": png[:33] + _png_chunk(b"zTXt", b"k\0\0" + zlib.compress(bytes(4000))) * 3 + png[33:],
        "rst.jpg": jpeg[:2] + b"\xff\xd0" * 50 + jpeg[2:],
        "soi.jpg": jpeg[:2] + b"\xff\xd8" + jpeg[2:],
        "dqt.jpg": jpeg[:2] + (b"\xff\xdb\x00\x43\x00" + bytes(range(1, 65))) * 8 + jpeg[2:],
    }
    for name, data in seeds.items():
        (folder / name).write_bytes(data)


def main():
    arguments = list(sys.argv)
    folders = [arg for arg in arguments[1:] if not arg.startswith("-")]
    if len(folders) == 1:
        # One folder: the new inputs go there, from seeds made afresh in it (libFuzzer reads
        # a corpus folder's subfolders too).
        seeds = pathlib.Path(folders[0]) / "seeds"
        seeds.mkdir(exist_ok=True)
        seed_corpus(seeds)
    elif not folders:
        # New inputs go to a folder of their own; the seeds are made afresh beside it.
        work = pathlib.Path(tempfile.mkdtemp(prefix="fuzz_decode_cost."))
        (work / "found").mkdir()
        (work / "seeds").mkdir()
        seed_corpus(work / "seeds")
        print(f"fuzz_decode_cost: corpus in {work}", flush=True)
        arguments += [str(work / "found"), str(work / "seeds")]
    for option, default in (("-max_len", "65536"), ("-timeout", "60")):
        if not any(arg.startswith(option + "=") for arg in arguments):
            arguments.append(f"{option}={default}")
    atheris.Setup(arguments, check)
    atheris.Fuzz()  # libFuzzer ends the process at the end of the run


if __name__ == "__main__":
    main()
