"""Uploaded photos decoded at a bounded cost.

An upload's bytes reach only Pillow's JPEG, PNG and WebP parsers, and only after its header
was read here and the work it announces checked against a budget: whatever fits the upload
limit either costs at most a few times a 12 MP phone photo's memory and CPU, or is refused with
413 before a pixel is decoded (bench/bench_upload_cost.py measures each kind at its budget).
The budgets follow what each decoder must do:

- JPEG decodes at 1/2, 1/4 or 1/8 scale in the decoder (Pillow's draft mode), so a 40 MP photo
  costs what its reduced copy does; what is bounded is the decoded size (a photo too narrow to
  be reduced), and for a JPEG in several scans (progressive) the whole-image coefficient buffer
  the decoder keeps and the work of its scans, each of which passes over every block it covers.
- PNG is inflated and unfiltered at full size, at a cost that follows its bytes of pixel data
  (width x height x bytes per pixel, 8 for 16-bit RGBA): that is its budget.
- WebP is decoded at full size through frame buffers of 4 bytes a pixel (Pillow's animation
  decoder), about 15 bytes a pixel in all: the smallest budget.
- Headers whose parsing Pillow does in Python (JPEG segments, PNG chunks) are bounded too.

The decoded image is reduced (PNG, WebP) no further than detection needs, converted to RGB
strip by strip (alpha onto white, 16-bit scaled to 8, palettes, CMYK) so no full-size copy is
made on the way, and turned upright (EXIF orientation).
"""

import dataclasses
import io
import logging
import re
import warnings

import numpy as np
from PIL import Image, PngImagePlugin

log = logging.getLogger(__name__)

SEND_A_PHOTO = "send a JPEG, PNG or WebP photo"

# Budgets, measured in bench/bench_upload_cost.py against a 12 MP phone photo (BENCHMARKS.md).
# Pixels held decoded at once: a JPEG after draft scaling, a PNG or WebP at full size.
MAX_DECODED_PIXELS = 16_000_000
# PNG: bytes of pixel data to inflate and unfilter (16 MP of RGB, 12.5 MP of RGBA, 6 MP of 16-bit RGBA).
MAX_PNG_DATA_BYTES = 50_000_000
# WebP: decoded at full size, and lossy WebP's decoder spends ~70 ns on each byte of the file.
MAX_WEBP_PIXELS = 12_600_000  # a 4096x3072 phone photo
MAX_WEBP_BYTES = 3_000_000  # the same photo at quality 80 is 1-3 MB
# A JPEG in several scans (progressive): the coefficient buffer its decoder keeps, 2 bytes per
# coefficient of the whole image (33 MP of 4:2:0 colour, 16.6 MP of 4:4:4), and the 8x8 blocks
# its scans pass over, summed (the usual 10 scans of a 33 MP 4:2:0 photo: 3.6 million).
MAX_JPEG_COEFFICIENT_BYTES = 100_000_000
MAX_JPEG_SCAN_BLOCKS = 6_000_000
# What Pillow parses in Python before the pixels, walked here by Pillow's own grammar
# (JpegImagePlugin's marker loop, PngImagePlugin's chunks). A JPEG: every marker up to the first
# scan counted (restarts and a second SOI included), then the segments between scans; bytes
# that are not markers (junk, fill); the bytes before the first scan (Photoshop's resource
# blocks are walked in Python: 1 MB is ~90,000 steps); quantization tables (each table is a
# Python loop and a copy of the rest: 4 tables of 129 bytes is all a photo has).
MAX_JPEG_SEGMENTS = 500
MAX_JPEG_JUNK_BYTES = 1024
MAX_JPEG_HEADER_BYTES = 2 * 1024 * 1024
MAX_JPEG_DQT_BYTES = 4 * 1024
# A PNG: chunks of the kinds a photo carries; one ICC profile (each is inflated, up to
# MAX_TEXT_CHUNK below); a few text chunks; a few unknown ancillary ones (read and skipped).
MAX_PNG_CHUNKS = 5_000
MAX_PNG_TEXT_CHUNKS = 16
MAX_PNG_OTHER_CHUNKS = 16
MAX_WEBP_CHUNKS = 5_000
# EXIF is parsed in Python too, tag by tag: no more than a JPEG can carry (a 64 KB segment).
MAX_EXIF_BYTES = 65_535
# Pillow keeps PNG text chunks (decompressed) in memory: 64 MB by default.
PngImagePlugin.MAX_TEXT_CHUNK = 1024 * 1024
PngImagePlugin.MAX_TEXT_MEMORY = 4 * 1024 * 1024

STRIP_BYTES = 4 * 1024 * 1024  # of the decoded image, converted at a time
ORIENTATION = 0x0112

# What other files most often are, to say so when they are refused.
OTHER_FORMATS = ((b"GIF8", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
                 (b"8BPS", "PSD"), (b"\x00\x00\x01\x00", "ICO"), (b"%PDF", "PDF"))


class ImageError(ValueError):
    """A photo we cannot use, with the HTTP status that says why."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Photo:
    """A decoded photo: its pixels, possibly at reduced scale, and its own size."""

    pixels: np.ndarray  # RGB uint8, upright (EXIF orientation applied)
    width: int  # the photo's own size, upright
    height: int
    scale: int = 1  # photo pixels per decoded pixel, each way (JPEG draft 2, 4, 8; PNG/WebP any)

    def photo_box(self, box):
        """A (top, right, bottom, left) box in pixels, in the photo's own pixels instead."""
        top, right, bottom, left = (round(v * self.scale) for v in box)
        return max(0, top), min(self.width, right), min(self.height, bottom), max(0, left)


def load_photo(data, max_pixels, min_side=None):
    """Decode JPEG, PNG or WebP bytes into a Photo.

    With min_side, a photo larger than needed is decoded at reduced scale as long as both sides
    stay at least min_side: a JPEG at 1/2, 1/4 or 1/8 in the decoder (a 12 MP phone photo
    becomes 1512x2016), a PNG or WebP reduced by a whole factor as it is converted.

    Refuses what is empty, not one of the three formats, truncated or corrupt (400, 415), or over
    max_pixels or a budget (413, checked from the header before anything is decoded)."""
    if not data:
        raise ImageError("the uploaded file is empty")
    kind = sniff(data)
    width, height, scale = check_cost(kind, data, max_pixels, min_side)
    with warnings.catch_warnings():
        # Pillow warns about odd input (EXIF tags past the end...) once per oddity: not in our logs.
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return _decode(kind, data, width, height, scale, min_side)


def _decode(kind, data, width, height, scale, min_side):
    image = _pillow(lambda: Image.open(io.BytesIO(data), formats=[kind]), "cannot be read")
    try:
        # What Pillow read must be what was budgeted (an MPO is a JPEG with more pictures after it).
        if image.format not in ({"JPEG", "MPO"} if kind == "JPEG" else {kind}) or image.size != (width, height):
            raise ImageError("the image's header is inconsistent")
        if kind == "JPEG" and scale > 1:
            image.draft("RGB", (min_side, min_side))
            if image.size != (_ceil(width, scale), _ceil(height, scale)):
                raise ImageError("the image's header is inconsistent")
        _pillow(image.load, "is truncated or corrupt")
        orientation = _orientation(image)
        factor = 1 if kind == "JPEG" else scale
        pixels = _pillow(lambda: _rgb_pixels(image, factor), "cannot be converted to RGB")
    finally:
        image.close()
    del image  # the decoded image goes before the pixels are turned (into a copy)
    own = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    return Photo(_upright(pixels, orientation), own[0], own[1], scale)


def _pillow(step, what):
    """Run a Pillow step on untrusted bytes: any error it raises means a photo we cannot use.
    (Pillow raises many kinds on odd input: OSError, SyntaxError, ValueError, struct.error...)"""
    try:
        return step()
    except (ImageError, MemoryError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _too_large(f"the image has too many pixels: {error}") from error
    except Exception as error:  # see the docstring
        log.info("image %s: %s: %s", what, type(error).__name__, error)
        raise ImageError(f"the image {what}") from error


def sniff(data):
    """JPEG, PNG or WEBP from the file's first bytes; 415 for anything else, named if known."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    name = next((name for magic, name in OTHER_FORMATS if data.startswith(magic)), None)
    if name is None and data[4:8] == b"ftyp":
        name = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"avif": "AVIF"}.get(data[8:12])
    if name:
        raise ImageError(f"{name} images are not accepted: {SEND_A_PHOTO}", status=415)
    raise ImageError(f"not an image: {SEND_A_PHOTO}", status=415)


# --- Budgets, from the headers ----------------------------------------------------------------

def _too_large(why):
    return ImageError(why, status=413)


def check_cost(kind, data, max_pixels, min_side=None):
    """(width, height, scale) from the header, once the work it announces is within budget.
    scale: how much smaller than the photo it will be decoded (1 for full size)."""
    if kind == "JPEG":
        header = jpeg_header(data)
    elif kind == "PNG":
        header = png_header(data)
    else:
        header = webp_header(data)
    width, height = header["width"], header["height"]
    if width < 1 or height < 1:
        raise ImageError("the image's header gives it no size")
    if width * height > max_pixels:
        raise _too_large(f"the image is {width}x{height} pixels; at most {max_pixels:,} pixels are accepted")
    scale = 1
    if min_side:
        scale = max(1, min(width // min_side, height // min_side))
        if kind == "JPEG":
            scale = next(s for s in (8, 4, 2, 1) if scale >= s)  # what draft mode can do
    decoded = _ceil(width, scale) * _ceil(height, scale) if kind == "JPEG" else width * height
    if decoded > MAX_DECODED_PIXELS:
        raise _too_large(f"the image is {width}x{height} pixels, {decoded:,} of them to decode; at most "
                         f"{MAX_DECODED_PIXELS:,} are decoded per photo (a JPEG at up to 1/8 scale while "
                         "both sides stay over the detection size): send a smaller photo")
    if kind == "JPEG" and header["scans"] > 1:
        coefficients, blocks = header["coefficient_bytes"], header["scan_blocks"]
        if coefficients > MAX_JPEG_COEFFICIENT_BYTES or blocks > MAX_JPEG_SCAN_BLOCKS:
            raise _too_large(
                f"the image is a {width}x{height} JPEG in {header['scans']:,} scans (progressive), which decodes "
                f"through {coefficients / 1e6:.0f} MB of coefficients and {blocks:,} block scans; at most "
                f"{MAX_JPEG_COEFFICIENT_BYTES / 1e6:.0f} MB and {MAX_JPEG_SCAN_BLOCKS:,} are accepted: send it "
                "smaller or as a baseline JPEG")
    if kind == "PNG" and header["data_bytes"] > MAX_PNG_DATA_BYTES:
        raise _too_large(
            f"the image is a {width}x{height} PNG of {header['bits_per_pixel']} bits a pixel, "
            f"{header['data_bytes'] / 1e6:.0f} MB of pixel data to inflate; at most "
            f"{MAX_PNG_DATA_BYTES / 1e6:.0f} MB are accepted (16 MP of RGB, 12.5 MP of RGBA, 6 MP at 16 bits): "
            "send it smaller or as a JPEG")
    if kind == "WEBP" and (width * height > MAX_WEBP_PIXELS or len(data) > MAX_WEBP_BYTES):
        raise _too_large(f"the image is a {width}x{height} WebP of {len(data) / 1e6:.1f} MB; a WebP is accepted up to "
                         f"{MAX_WEBP_PIXELS:,} pixels and {MAX_WEBP_BYTES / 1e6:g} MB (it decodes at full size, and "
                         "slower than a JPEG): send it smaller or as a JPEG")
    return width, height, scale


_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# The markers Pillow's loop knows (JpegImagePlugin.MARKER): these carry a length and a body...
_WITH_BODY = frozenset(range(0xC0, 0xC8)) | frozenset(range(0xC9, 0xD0)) | frozenset(range(0xDA, 0xF0)) | {0xFE}
# ...and these stand alone (restarts, SOI, EOI, JPG, JPG0-13): Pillow reads on after each.
_ALONE = frozenset({0xC8, *range(0xD0, 0xDA), *range(0xF0, 0xFE)})
# After a scan's entropy-coded data: the next marker (0xFF00 is a stuffed byte, 0xFFD0-D7 restarts).
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_FILL = re.compile(rb"\xff+")


def jpeg_header(data):
    """The frame's size and components, and the scans that follow, walked up to the first EOI
    after the first scan: up to that scan exactly as Pillow's marker loop walks it (so what it
    costs Pillow is what is counted here), after it as libjpeg does.

    Returns width, height, scans, scan_blocks (8x8 blocks the scans pass over, summed),
    coefficient_bytes (the buffer a decoder keeps for an image in several scans)."""
    frame, first_scan = _jpeg_until_first_scan(data)
    scans, scan_blocks, segments = 0, 0, 0
    pos = first_scan
    while pos + 1 < len(data):
        if data[pos] != 0xFF:
            following = data.find(b"\xff", pos)
            pos = len(data) if following < 0 else following
            continue
        marker = data[pos + 1]
        if marker in (0xFF, 0x00):
            pos = _FILL.match(data, pos).end() - 1 if marker == 0xFF else pos + 2
            continue
        if marker == 0xD9:
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise _too_large(f"the JPEG has more than {MAX_JPEG_SEGMENTS} segments; a photo has tens")
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        body = data[pos + 4:pos + 2 + length]
        end = pos + 2 + length
        if marker == 0xDA:
            scans += 1
            ids = set(body[1:1 + 2 * body[0]:2]) if body else set()
            scan_blocks += sum(blocks for component, blocks in frame["blocks"].items() if component in ids)
            found = _NEXT_MARKER.search(data, end)
            end = found.start() if found else len(data)
        pos = max(end, pos + 2)
    return {"width": frame["width"], "height": frame["height"], "scans": scans, "scan_blocks": scan_blocks,
            "coefficient_bytes": sum(frame["blocks"].values()) * 64 * 2}


def _jpeg_until_first_scan(data):
    """(frame, where the first scan's SOS marker starts), walking the markers one by one as
    JpegImagePlugin._open does, each of its steps counted: a marker, a junk or fill byte."""
    frame, markers, junk, dqt_bytes, exif_bytes = None, 0, 0, 0, 0
    pos = 3  # Pillow reads FF D8 FF, then the byte after that FF is a marker's second byte
    while pos < len(data):
        code, pos = data[pos], pos + 1
        if code == 0x00 or code == 0xFF:
            # FF00 (a stuffed byte outside a scan) or FFFF (fill): Pillow reads on one byte at a time.
            junk += 1
            if junk > MAX_JPEG_JUNK_BYTES:
                raise ImageError("not a valid JPEG: data between its segments")
            if code == 0xFF:
                continue
        elif code in _ALONE or code in _WITH_BODY:
            markers += 1
            if markers > MAX_JPEG_SEGMENTS:
                raise _too_large(f"the JPEG has more than {MAX_JPEG_SEGMENTS} segments; a photo has tens")
            if code in _WITH_BODY:
                start = pos - 2
                length = int.from_bytes(data[pos:pos + 2], "big")
                if length < 2 or pos + length > len(data):
                    break  # cut short: no frame or no scan, below
                body, pos = data[pos + 2:pos + length], pos + length
                if pos > MAX_JPEG_HEADER_BYTES:
                    raise _too_large(f"the JPEG has more than {MAX_JPEG_HEADER_BYTES // 1048576} MB before its "
                                     "pixels; a photo's metadata is a few KB to a few hundred")
                if code in _SOF:
                    if frame is not None:
                        raise ImageError("not a valid JPEG: two frame headers")
                    frame = _jpeg_frame(body)
                elif code == 0xDA:
                    if frame is None:
                        raise ImageError("not a valid JPEG: a scan before the frame header")
                    return frame, start
                elif code == 0xDB:
                    dqt_bytes += len(body)
                    if dqt_bytes > MAX_JPEG_DQT_BYTES:
                        raise ImageError("not a valid JPEG: more quantization tables than a JPEG has")
                elif code == 0xE1 and body.startswith(b"Exif\0\0"):
                    # Pillow joins every EXIF segment into one block, then parses it tag by tag.
                    exif_bytes += len(body)
                    if exif_bytes > MAX_EXIF_BYTES:
                        raise _too_large(f"the JPEG's EXIF blocks are over {MAX_EXIF_BYTES:,} bytes")
        else:
            raise ImageError("not a valid JPEG: an unknown marker")
        # Pillow reads the next byte; up to the next FF, each is junk it skips one by one.
        following = data.find(b"\xff", pos)
        following = len(data) if following < 0 else following
        junk += following - pos
        if junk > MAX_JPEG_JUNK_BYTES:
            raise ImageError("not a valid JPEG: data between its segments")
        pos = following + 1
    raise ImageError("not a valid JPEG: no frame header" if frame is None else "not a valid JPEG: no scan")


def _jpeg_frame(body):
    """Size and each component's 8x8 blocks from a start-of-frame segment."""
    if len(body) < 6:
        raise ImageError("not a valid JPEG: a short frame header")
    height, width, count = int.from_bytes(body[1:3], "big"), int.from_bytes(body[3:5], "big"), body[5]
    components = [(body[i], body[i + 1] >> 4, body[i + 1] & 15) for i in range(6, min(len(body) - 1, 6 + 3 * count), 3)]
    if not components or any(h < 1 or v < 1 for _, h, v in components):
        raise ImageError("not a valid JPEG: a frame header without components")
    h_max, v_max = max(h for _, h, _ in components), max(v for _, _, v in components)
    blocks = {}
    for component, h, v in components:
        columns, rows = _ceil(_ceil(width * h, h_max), 8), _ceil(_ceil(height * v, v_max), 8)
        blocks[component] = blocks.get(component, 0) + columns * rows
    return {"width": width, "height": height, "blocks": blocks}


def _ceil(a, b):
    return -(-a // b)


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# The chunks a photo carries (PNG 3rd edition), each read by Pillow at most at a small cost;
# a text chunk or ICC profile is inflated (up to PngImagePlugin.MAX_TEXT_CHUNK), so they are few.
_PNG_KNOWN = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB",
                        b"cICP", b"mDCV", b"cLLI", b"eXIf", b"bKGD", b"hIST", b"pHYs", b"sPLT", b"tIME"})
_PNG_TEXT = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_PNG_ANIMATION = frozenset({b"acTL", b"fcTL", b"fdAT"})


def png_header(data):
    """The size and pixel format from IHDR, once every chunk was checked: only the kinds a photo
    carries, one ICC profile, one EXIF block, a few text and unknown ancillary chunks (Pillow
    reads each in Python, and inflates ICC profiles and compressed text). Returns width, height,
    bits_per_pixel, data_bytes (what is inflated: rows and their filter bytes)."""
    if data[12:16] != b"IHDR" or len(data) < 29:
        raise ImageError("not a valid PNG: no header")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    bit_depth, color_type = data[24], data[25]
    if color_type not in _PNG_CHANNELS or bit_depth not in (1, 2, 4, 8, 16):
        raise ImageError("not a valid PNG: an unknown pixel format")
    chunks, seen, pos = 0, {}, 8
    while pos + 8 <= len(data):
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise _too_large(f"the PNG has more than {MAX_PNG_CHUNKS:,} chunks")
        kind, length = data[pos + 4:pos + 8], int.from_bytes(data[pos:pos + 4], "big")
        if kind == b"IEND":
            break
        group = kind if kind in _PNG_KNOWN else b"text" if kind in _PNG_TEXT else b"other"
        seen[group] = seen.get(group, 0) + 1
        if kind in _PNG_ANIMATION:
            raise ImageError("an animated PNG is not accepted: send a photo", status=415)
        if group == b"other" and not kind[:1].islower():
            raise ImageError(f"not a valid PNG: an unknown critical chunk {kind!r}")
        if kind in (b"IHDR", b"iCCP", b"eXIf", b"PLTE") and seen[kind] > 1:
            raise ImageError(f"not a valid PNG: more than one {kind.decode()} chunk")
        if group == b"text" and seen[group] > MAX_PNG_TEXT_CHUNKS:
            raise _too_large(f"the PNG has more than {MAX_PNG_TEXT_CHUNKS} text chunks")
        if group == b"other" and seen[group] > MAX_PNG_OTHER_CHUNKS:
            raise _too_large(f"the PNG has more than {MAX_PNG_OTHER_CHUNKS} chunks of kinds a photo does not use")
        if kind == b"eXIf" and length > MAX_EXIF_BYTES:
            raise _too_large(f"the PNG's EXIF block is {length:,} bytes; at most {MAX_EXIF_BYTES:,} are accepted")
        pos += 12 + length
    bits = _PNG_CHANNELS[color_type] * bit_depth
    return {"width": width, "height": height, "bits_per_pixel": bits,
            "data_bytes": height * (1 + (width * bits + 7) // 8)}


NOT_A_PHOTO_WEBP = "send a photo as a lossy WebP, a JPEG or a PNG"


def webp_header(data):
    """The canvas size from the first chunk (VP8X, or a still image's VP8), once the chunks were
    counted and the EXIF block's size checked. Lossless WebP (VP8L), lossless alpha planes and
    animations are refused: no camera makes them, and a lossless stream declares its own
    decoding tables (65,536 Huffman groups cost libwebp 550 MB) where a PNG's cost follows its
    size. A lossy photo with a transparent layer is not a photo either: send it as a PNG."""
    chunks, pos = 0, 12
    while pos + 8 <= len(data):
        chunks += 1
        if chunks > MAX_WEBP_CHUNKS:
            raise _too_large(f"the WebP has more than {MAX_WEBP_CHUNKS:,} chunks")
        kind, length = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if kind == b"VP8L":
            raise ImageError(f"a lossless WebP is not accepted: {NOT_A_PHOTO_WEBP}", status=415)
        if kind == b"ALPH" and len(data) > pos + 8 and data[pos + 8] & 0x03:
            raise ImageError(f"a WebP with a compressed transparent layer is not accepted: {NOT_A_PHOTO_WEBP}",
                             status=415)
        if kind in (b"ANIM", b"ANMF"):
            raise ImageError(f"an animated WebP is not accepted: {NOT_A_PHOTO_WEBP}", status=415)
        if kind == b"EXIF" and length > MAX_EXIF_BYTES:
            raise _too_large(f"the WebP's EXIF block is {length:,} bytes; at most {MAX_EXIF_BYTES:,} are accepted")
        pos += 8 + length + (length & 1)
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return {"width": int.from_bytes(data[24:27], "little") + 1, "height": int.from_bytes(data[27:30], "little") + 1}
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return {"width": int.from_bytes(data[26:28], "little") & 0x3FFF,
                "height": int.from_bytes(data[28:30], "little") & 0x3FFF}
    raise ImageError("not a valid WebP: no image header")


# --- Conversion -------------------------------------------------------------------------------

_HIGH_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


def _rgb_pixels(image, factor=1):
    """The loaded image as an RGB uint8 array, reduced by a whole factor, converted a strip at a
    time: no full-size copy beside the decoded image and the result."""
    width, height = image.size
    out = np.empty((_ceil(height, factor), _ceil(width, factor), 3), np.uint8)
    rows = max(factor, STRIP_BYTES // (4 * width) // factor * factor)
    convert = _strip_converter(image)
    for top in range(0, height, rows):
        strip = convert(image.crop((0, top, width, min(height, top + rows))))
        if factor > 1:
            strip = strip.reduce(factor)
        out[top // factor:top // factor + strip.height] = np.asarray(strip)
    return out


def _strip_converter(image):
    """A function from a strip of the image to an RGB Pillow image."""
    transparency = image.info.get("transparency")
    if image.mode in _HIGH_BIT_MODES:
        # 16-bit and 32-bit: scaled to 8 bits by the image's brightest value, instead of
        # clipping everything to white; a transparent value (tRNS) becomes white.
        low, high = image.getextrema()
        factor = 255.0 / high if high > 0 else 1.0
        if image.mode.startswith("I;16"):
            # 16-bit: one table lookup per pixel.
            table = np.clip(np.arange(65536) * factor, 0, 255).astype(np.uint8)
            if isinstance(transparency, int) and 0 <= transparency < 65536:
                table[transparency] = 255
            return lambda strip: Image.fromarray(table[np.asarray(strip)], mode="L").convert("RGB")

        def convert(strip):
            values = np.asarray(strip, dtype=np.float32)
            grey = np.clip(values * factor, 0, 255).astype(np.uint8)
            if isinstance(transparency, int):
                grey[values == transparency] = 255
            return Image.fromarray(grey, mode="L").convert("RGB")
        return convert
    if image.mode in _ALPHA_MODES or transparency is not None:
        def convert(strip):
            # Transparent parts become white, not black, as a browser shows them.
            rgba = strip.convert("RGBA")
            white = Image.new("RGB", strip.size, (255, 255, 255))
            white.paste(rgba, (0, 0), rgba)
            return white
        return convert
    if image.mode == "RGB":
        return lambda strip: strip
    return lambda strip: strip.convert("RGB")


def _orientation(image):
    """The EXIF orientation (1-8), 1 when absent or unreadable: a bad EXIF block should not
    cost the visitor the match."""
    try:
        value = image.getexif().get(ORIENTATION, 1)
    except Exception:  # any error parsing untrusted EXIF
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _upright(pixels, orientation):
    """The array turned as EXIF orientation says (as ImageOps.exif_transpose does)."""
    turned = {
        2: lambda a: a[:, ::-1],  # mirrored
        3: lambda a: a[::-1, ::-1],  # upside down
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),  # on its side: turn clockwise
        7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }.get(orientation)
    return pixels if turned is None else np.ascontiguousarray(turned(pixels))
