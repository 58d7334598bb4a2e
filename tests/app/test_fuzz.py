"""A seeded fuzz of the whole app through Flask's test client: odd paths, methods, parameters,
multipart shapes, raw bodies and content types, broken and hostile images. Every answer must be
below 500, and the app must still match a photo afterwards. The counts by status are printed
(BENCHMARKS.md quotes them; run with -s to see them)."""

import collections
import io
import random
import struct
import urllib.parse
import zlib

from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from .conftest import encode

SEED = 20240611
REQUESTS = 3000
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
PATHS = ["/", "/match", "/api/v1/match", "/api/v1/match/", "/api/v1/casts", "/api/v1/casts/presidents",
         "/api/v1/casts/nope", "/casts", "/casts/presidents", "/casts/presidents/obama", "/casts/presidents/nobody",
         "/media/presidents/obama/obama.jpg", "/media/presidents/obama/../cast.yml", "/thumbs/presidents/obama/obama.jpg.webp",
         "/thumbs/presidents/obama/x.webp", "/healthz", "/metrics", "/static/style.css", "/static/../main.py",
         "/api/v2/match", "//api/v1/match", "/api/v1//match", "/%2e%2e/%2e%2e/etc/passwd", "/casts/%ff%fe",
         "/casts/%00", "/media/%c0%ae%c0%ae/x", "/casts/\u00e9\u00e8", "/api/v1/casts/\u2603", "/x" * 300]
TEXT = ["", "1", "3", "20", "21", "0", "-1", "007", "+3", " 3", "3 ", "1e3", "0x10", "3.0", "\u00b2", "\u0663", "\uff13",
        "\U0001d7d1", "\u2476", "9" * 30, "9" * 5000, "presidents", "Presidents", "nope", "a" * 65, "\u00e9",
        "\x00", "\n", "%ff", "%c3%28", "%ed%a0%80", "\u202e", "<script>", "'; DROP TABLE", "../etc"]
CONTENT_TYPES = ["image/jpeg", "image/png", "image/webp", "IMAGE/JPEG", "image/jpeg; charset=utf-8", "image/gif",
                 "image/jpg", "image/*", "text/plain", "application/octet-stream", "application/json",
                 "application/x-www-form-urlencoded", "multipart/form-data", "multipart/form-data; boundary=",
                 "multipart/form-data; boundary=zzz", "multipart/mixed", "", ";;;", "image/jpeg\u00e9", None]


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def images(photos):
    """Small uploads, cheap to refuse or to match: real, truncated, mutated, crafted."""
    face = Image.open(photos / "obama2.jpg").convert("RGB").resize((188, 360))
    tiny = Image.new("RGB", (64, 48), (120, 140, 160))
    base = [encode(face, "JPEG"), encode(face, "PNG"), encode(face, "WEBP"), encode(tiny, "JPEG"), encode(tiny, "PNG"),
            encode(tiny, "WEBP"), encode(tiny.convert("RGBA"), "PNG"), encode(tiny.convert("P"), "PNG", transparency=0),
            encode(tiny, "JPEG", progressive=True), encode(tiny.convert("CMYK"), "JPEG"), encode(tiny, "GIF"),
            encode(tiny, "BMP"), encode(tiny, "TIFF"), encode(tiny.convert("I;16"), "PNG")]
    hostile = [
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 16, 6, 0, 0, 0)) + chunk(b"IEND", b""),
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4000, 4000, 8, 6, 0, 0, 0)) + chunk(b"IEND", b""),
        b"\xff\xd8" + b"\xff\xfe\x00\x02" * 700 + base[3][2:],
        b"RIFF\x16\x00\x00\x00WEBPVP8X" + bytes(8) + b"\xff\x3f\x00\xff\x3f\x00",
        b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP", b"", b"\x00" * 100,
    ]
    return base, hostile


def body_bytes(rng, base, hostile):
    kind = rng.random()
    if kind < 0.15:
        return rng.choice(hostile)
    if kind < 0.25:
        return rng.randbytes(rng.choice([1, 10, 1000, 50_000, 300_000]))
    data = rng.choice(base)
    if kind < 0.45:
        return data[:rng.randrange(len(data) + 1)]  # truncated
    if kind < 0.75:
        mutated = bytearray(data)
        for _ in range(rng.choice([1, 2, 8, 64])):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        return bytes(mutated)
    if kind < 0.8:
        return data + rng.randbytes(rng.choice([10, 100_000]))  # trailing junk
    return data


def query(rng):
    params = []
    for _ in range(rng.choice([0, 0, 1, 2, 3, 5])):
        params.append((rng.choice(["k", "k", "cast", "cast", "image", "x", "K", "\u00e9", "k[]", ""]), rng.choice(TEXT)))
    # Percent-encoded, as clients send them; now and then raw (nginx passes raw bytes on).
    quote = (lambda text: text) if rng.random() < 0.05 else (lambda text: urllib.parse.quote(text, safe="%"))
    encoded = "&".join(f"{quote(name)}={quote(value)}" for name, value in params)
    if rng.random() < 0.1:
        encoded += rng.choice(["&", "&&k", "=", "%", "%zz", "k=%ff%fe", "k", "cast=%80"])
    return encoded


def multipart(rng, data):
    """One of the odd shapes a multipart form can take."""
    names = ["image", "image", "image", "Image", "photo", "image[]", "", "\u00e9"]
    filenames = ["photo.jpg", "", "../../etc/passwd", "a\x00b.jpg", "\u00e9\U0001f600.png", "x" * 500, "C:\\x.jpg", None]
    fields = {}
    shape = rng.random()
    if shape < 0.1:
        pass  # no file at all
    elif shape < 0.2:
        fields["image"] = [FileStorage(io.BytesIO(data), "a.jpg"), FileStorage(io.BytesIO(data), "b.jpg")]
    elif shape < 0.3:
        fields["image"] = FileStorage(io.BytesIO(b""), "empty.jpg")
    elif shape < 0.35:
        fields["image"] = "not a file"
    else:
        fields[rng.choice(names)] = FileStorage(io.BytesIO(data), rng.choice(filenames),
                                                content_type=rng.choice(["image/jpeg", "text/plain", None]))
    for _ in range(rng.choice([0, 0, 1, 2])):
        fields[rng.choice(["cast", "k", "x"])] = rng.choice(TEXT)
    boundary, body = encode_multipart(fields)
    if rng.random() < 0.1:
        body = body[:rng.randrange(len(body) + 1)]  # cut short
    return body, rng.choice([f"multipart/form-data; boundary={boundary}", f"multipart/form-data; boundary={boundary}",
                             "multipart/form-data; boundary=other", "multipart/form-data"])


def request(rng, base, hostile):
    """The arguments of one client.open call: a third of them well-formed matches of odd
    images, the rest anything."""
    if rng.random() < 0.35:
        data = body_bytes(rng, base, hostile)
        arguments = {"method": "POST", "path": rng.choice(["/api/v1/match", "/api/v1/match", "/match"]),
                     "query_string": query(rng) if rng.random() < 0.3 else ""}
        if rng.random() < 0.5:
            boundary, arguments["data"] = encode_multipart({"image": FileStorage(io.BytesIO(data), "photo")})
            arguments["content_type"] = f"multipart/form-data; boundary={boundary}"
        else:
            arguments["data"], arguments["content_type"] = data, rng.choice(["image/jpeg", "image/png", "image/webp"])
        return arguments
    method = rng.choice(METHODS) if rng.random() < 0.5 else "POST"
    path = rng.choice(PATHS) if rng.random() < 0.5 else rng.choice(["/api/v1/match", "/match"])
    if rng.random() < 0.05:
        path = "/" + "".join(rng.choice("abc/%.\u00e9\u2603\x7f ") for _ in range(rng.randrange(1, 40)))
    arguments = {"method": method, "path": path, "query_string": query(rng)}
    if path.startswith("//"):  # the test client would read it as a host name
        arguments.update(path="/", environ_overrides={"PATH_INFO": path.encode().decode("latin-1")})
    if rng.random() < 0.05:  # raw bytes, as nginx may pass them on
        arguments["environ_overrides"] = {"PATH_INFO": rng.choice(["/api/v1/match", "/casts/\xff\xfe", "/\xc3("]),
                                          "QUERY_STRING": rng.choice(["k=\xb2", "cast=\xff", "k=%ff", "\x00"])}
    shape = rng.random()
    data = body_bytes(rng, base, hostile)
    if shape < 0.45:
        arguments["data"], arguments["content_type"] = multipart(rng, data)
    elif shape < 0.85:
        content_type = rng.choice(CONTENT_TYPES)
        arguments["data"] = data
        if content_type is not None:
            arguments["headers"] = {"Content-Type": content_type}
    elif shape < 0.95:
        arguments["data"] = {rng.choice(["image", "cast", "k"]): rng.choice(TEXT)}  # a url-encoded form
    if rng.random() < 0.03:
        arguments.setdefault("environ_overrides", {})["CONTENT_LENGTH"] = rng.choice(["abc", "-1", "99999999999", ""])
    return arguments


def test_no_request_gets_a_500(client, photos, capsys):
    rng = random.Random(SEED)
    base, hostile = images(photos)
    counts = collections.Counter()
    for _ in range(REQUESTS):
        arguments = request(rng, base, hostile)
        response = client.open(**arguments)
        counts[response.status_code] += 1
        assert response.status_code < 500, (arguments["method"], arguments["path"], arguments.get("query_string"),
                                            response.get_data(as_text=True)[:300])
        path = arguments.get("environ_overrides", {}).get("PATH_INFO", arguments["path"])
        if path.startswith("/api/") and response.status_code >= 400 and arguments["method"] != "HEAD":
            assert response.is_json and response.json["error"]["status"] == response.status_code
    with capsys.disabled():
        print(f"\nfuzz, {REQUESTS} requests (seed {SEED}): "
              + ", ".join(f"{status}: {count}" for status, count in sorted(counts.items())))
    assert client.get("/healthz").status_code == 200
    answer = client.post("/api/v1/match", data=(photos / "obama2.jpg").read_bytes(), content_type="image/jpeg")
    assert answer.status_code == 200 and answer.json["faces"][0]["matches"][0]["member"] == "obama"
