"""face_rec.decode: every mode converted as Pillow would, turned upright, reduced no further than
detection needs, and what would cost too much refused from its header, with the reason."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from face_rec import decode
from face_rec.decode import ImageError, load_photo

from .conftest import encode

MAX = 40_000_000


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width, height, bit_depth=8, color_type=6, extra=b""):
    """A PNG's signature, IHDR and a few bytes of pixels: all the budget check reads."""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
            + extra + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def with_jpeg_size(data, width, height):
    """The JPEG with its frame header claiming another size (the pixels stay small)."""
    sof = next(data.find(marker) for marker in (b"\xff\xc0", b"\xff\xc2") if data.find(marker) > 0)
    return data[:sof + 5] + struct.pack(">HH", height, width) + data[sof + 9:]


def webp_with_chunk(kind, data):
    """A small lossy WebP with one more chunk after its image."""
    body = encode(Image.new("RGB", (64, 64)), "WEBP")[12:] + kind + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def refused(data, status, words, min_side=1000):
    with pytest.raises(ImageError) as error:
        load_photo(data, MAX, min_side)
    assert error.value.status == status and words in str(error.value), str(error.value)


def reference_rgb(image):
    """What the app did before decode.py: ImageOps and alpha_composite on full-size copies."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I"):
        array = np.asarray(image, dtype=np.float32)
        image = Image.fromarray((array * (255.0 / array.max())).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def picture():
    """A 300x200 photo-like picture with a gradient of transparency to composite."""
    rng = np.random.default_rng(3)
    rgb = Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)).resize((300, 200))
    alpha = Image.linear_gradient("L").resize((300, 200))
    return rgb, alpha


@pytest.mark.parametrize("mode", ["RGB", "L", "1", "P", "P+tRNS", "RGBA", "LA", "I;16", "CMYK JPEG", "L JPEG",
                                  "16-bit RGBA PNG"])
def test_every_mode_is_converted_as_before(picture, mode):
    rgb, alpha = picture
    rgba = rgb.copy()
    rgba.putalpha(alpha)
    data = {
        "RGB": lambda: encode(rgb, "PNG"), "L": lambda: encode(rgb.convert("L"), "PNG"),
        "1": lambda: encode(rgb.convert("1"), "PNG"), "P": lambda: encode(rgb.convert("P"), "PNG"),
        "P+tRNS": lambda: encode(rgb.convert("P"), "PNG", transparency=7),
        "RGBA": lambda: encode(rgba, "PNG"), "LA": lambda: encode(rgba.convert("LA"), "PNG"),
        "I;16": lambda: encode(Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 200), "PNG"),
        "CMYK JPEG": lambda: encode(rgb.convert("CMYK"), "JPEG"), "L JPEG": lambda: encode(rgb.convert("L"), "JPEG"),
        "16-bit RGBA PNG": lambda: png_of_16_bit_rgba(np.asarray(rgba)),
    }[mode]()
    photo = load_photo(data, MAX)
    expected = reference_rgb(Image.open(io.BytesIO(data)))
    assert photo.pixels.shape == expected.shape and (photo.width, photo.height) == (300, 200) and photo.scale == 1
    assert np.abs(photo.pixels.astype(int) - expected).max() <= 1


def png_of_16_bit_rgba(rgba):
    rows = (rgba.astype(">u2") * 257).reshape(rgba.shape[0], -1).tobytes()
    stride = rgba.shape[1] * 8
    raw = b"".join(b"\x00" + rows[i * stride:(i + 1) * stride] for i in range(rgba.shape[0]))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", rgba.shape[1], rgba.shape[0], 16, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_turned_as_pillow_turns_it(picture, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    for data in (encode(picture[0], "PNG", exif=exif.tobytes()), encode(picture[0], "JPEG", exif=exif.tobytes())):
        photo = load_photo(data, MAX)
        expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
        assert np.array_equal(photo.pixels, expected)
        assert (photo.height, photo.width) == expected.shape[:2]


def test_a_bad_exif_block_leaves_the_photo_as_it_is(picture):
    data = encode(picture[0], "JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff")
    assert load_photo(data, MAX).pixels.shape == (200, 300, 3)


def test_png_and_webp_are_reduced_by_a_whole_factor_no_smaller_than_needed(picture):
    big = picture[0].resize((200, 260)).resize((2000, 2600))
    for fmt in ("PNG", "WEBP"):
        data = encode(big, fmt, **({"compress_level": 1} if fmt == "PNG" else {}))
        photo = load_photo(data, MAX, min_side=1000)
        assert photo.scale == 2 and photo.pixels.shape == (1300, 1000, 3) and (photo.width, photo.height) == (2000, 2600)
        expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").reduce(2))
        assert np.abs(photo.pixels.astype(int) - expected).max() <= 1
    assert load_photo(data, MAX, min_side=1100).scale == 1  # 2000 // 1100: both sides stay over it


def test_an_mpo_is_read_as_its_first_picture(picture):
    buffer = io.BytesIO()
    picture[0].save(buffer, "MPO", save_all=True, append_images=[picture[0].transpose(Image.Transpose.ROTATE_180)])
    mpo = Image.open(io.BytesIO(buffer.getvalue()))
    assert mpo.format == "MPO" and mpo.n_frames == 2
    photo = load_photo(buffer.getvalue(), MAX)
    assert np.array_equal(photo.pixels, np.asarray(mpo.convert("RGB")))


def test_photo_box_maps_decoded_pixels_to_the_photos_own():
    photo = decode.Photo(np.zeros((100, 75, 3), np.uint8), width=301, height=400, scale=4)
    assert photo.photo_box((10, 70, 90, 20)) == (40, 280, 360, 80)
    assert photo.photo_box((10, 75, 100, 0)) == (40, 300, 400, 0)  # clipped to the photo (301 // 4 rounds up)


@pytest.mark.parametrize(("data", "name"), [
    (b"GIF89a" + bytes(20), "GIF"), (b"BM" + bytes(40), "BMP"), (b"II*\x00" + bytes(20), "TIFF"),
    (b"\x00\x00\x00\x18ftypheic" + bytes(20), "HEIC"), (b"\x00\x00\x00\x18ftypavif" + bytes(20), "AVIF"),
])
def test_other_formats_are_named_in_the_415(data, name):
    refused(data, 415, f"{name} images are not accepted: send a JPEG, PNG or WebP photo")


@pytest.mark.parametrize(("make", "words"), [
    pytest.param(lambda: png_header(6324, 6324), "6324x6324 pixels, 39,992,976 of them to decode; at most 16,000,000",
                 id="40 MP PNG"),
    pytest.param(lambda: png_header(3600, 3600), "PNG of 32 bits a pixel, 52 MB of pixel data", id="RGBA PNG"),
    pytest.param(lambda: png_header(2600, 2600, 16, 6), "PNG of 64 bits a pixel", id="16-bit RGBA PNG"),
    pytest.param(lambda: png_header(64, 64, extra=chunk(b"eXIf", bytes(70_000))), "EXIF block is 70,000 bytes",
                 id="PNG EXIF"),
    pytest.param(lambda: png_header(64, 64, extra=chunk(b"prIv", b"") * 6000), "more than 16 chunks of kinds",
                 id="PNG chunks"),
    pytest.param(lambda: png_header(64, 64, extra=chunk(b"IDAT", b"") * 6000), "more than 5,000 chunks",
                 id="PNG data chunks"),
    pytest.param(lambda: with_jpeg_size(encode(Image.new("RGB", (64, 64)), "JPEG"), 20000, 1000),
                 "20000x1000 pixels, 20,000,000 of them to decode", id="narrow JPEG"),
    pytest.param(lambda: with_jpeg_size(encode(Image.new("RGB", (64, 64)), "JPEG", progressive=True, subsampling=0),
                                        4400, 4400), "JPEG in 10 scans (progressive)", id="progressive JPEG"),
    pytest.param(lambda: b"\xff\xd8" + b"\xff\xfe\x00\x02" * 600 + encode(Image.new("RGB", (8, 8)), "JPEG")[2:],
                 "more than 500 segments", id="JPEG segments"),
    pytest.param(lambda: b"RIFF\x16\x00\x00\x00WEBPVP8X" + struct.pack("<I", 10) + bytes(4)
                 + (3999).to_bytes(3, "little") + (3999).to_bytes(3, "little"), "4000x4000 WebP", id="WebP pixels"),
    pytest.param(lambda: webp_with_chunk(b"JUNK", bytes(3_000_000)), "a WebP is accepted up to", id="WebP bytes"),
    pytest.param(lambda: webp_with_chunk(b"EXIF", bytes(70_000)), "EXIF block is 70,000 bytes", id="WebP EXIF"),
    pytest.param(lambda: png_header(7000, 7000), "at most 40,000,000 pixels", id="over the cap"),
])
def test_what_would_cost_too_much_is_refused_from_its_header(make, words):
    refused(make(), 413, words)


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_lossless_and_transparent_webp_are_refused_as_not_photos(picture, mode):
    image = picture[0].copy()
    if mode == "RGBA":
        image.putalpha(picture[1])
    refused(encode(image, "WEBP", lossless=True), 415, "a lossless WebP is not accepted")
    if mode == "RGBA":
        # Lossy, with its transparent layer compressed losslessly (libwebp's default).
        refused(encode(image, "WEBP", quality=80), 415, "compressed transparent layer")


def test_a_jpeg_whose_scans_would_cost_too_much_is_refused():
    data = with_jpeg_size(encode(Image.new("RGB", (64, 64)), "JPEG", progressive=True, subsampling=0), 3000, 3000)
    scans = [i for i in range(len(data) - 1) if data[i:i + 2] == b"\xff\xda"]
    first_ac = data[scans[1]:scans[2]]
    refused(data[:-2] + first_ac * 50 + data[-2:], 413, "block scans; at most 100 MB and 6,000,000 are accepted")


def test_a_photo_within_every_budget_still_decodes():
    # A 40 MP JPEG is decoded at 1/4: 2.5 MP, well within MAX_DECODED_PIXELS.
    photo = load_photo(encode(Image.new("RGB", (7000, 5700), (90, 120, 150)), "JPEG", quality=50), MAX, 1000)
    assert photo.scale == 4 and photo.pixels.shape == (1425, 1750, 3) and (photo.width, photo.height) == (7000, 5700)


@pytest.mark.parametrize(("data", "words"), [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "no frame header"),
    (b"\xff\xd8\xff" + bytes(2000), "data between its segments"),
    (b"\xff\xd8" + b"\xff" * 100_000 + b"\xd9", "data between its segments"),  # fill bytes, which Pillow reads one by one
    (b"\x89PNG\r\n\x1a\n" + bytes(30), "no header"),
    (png_header(0, 10), "no size"),
    (png_header(10, 10, bit_depth=3), "unknown pixel format"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(20), "no image header"),
    (png_header(64, 64), "cannot be read"),  # an IDAT too short for its rows... and a bad CRC below
])
def test_broken_headers_get_400(data, words):
    with pytest.raises(ImageError) as error:
        load_photo(data, MAX, 1000)
    assert error.value.status == 400 and (words in str(error.value) or "truncated or corrupt" in str(error.value))
