"""Matching real photos against the demo cast, through the app's JSON API and HTML pages."""

import functools
import io
import time

import numpy as np
import pytest
from PIL import Image

import face_recognition
from face_rec import create_app
from face_rec.encodings_store import CastEncodings
from face_rec.face_compare import FaceIndex

from .conftest import encode


def first_matches(response):
    assert response.status_code == 200, response.json
    return [face["matches"][0]["member"] for face in response.json["faces"]]


@pytest.mark.parametrize(("photo", "expected"), [
    ("obama2.jpg", "obama"), ("obama3.jpg", "obama"), ("obama_partial_face.jpg", "obama"), ("biden.jpg", "biden"),
])
def test_photo_matches_the_right_member_first(photos, upload, photo, expected):
    response = upload((photos / photo).read_bytes(), cast="presidents")
    assert first_matches(response) == [expected]
    best = response.json["faces"][0]["matches"][0]
    assert best["is_match"] and best["distance"] < 0.6 and best["score"] > 0.5
    assert best["photo_url"].startswith(f"/media/presidents/{expected}/")


def test_match_across_all_casts_and_top_k(photos, upload):
    response = upload((photos / "obama2.jpg").read_bytes(), k="1")
    assert first_matches(response) == ["obama"]
    assert len(response.json["faces"][0]["matches"]) == 1
    both = upload((photos / "obama2.jpg").read_bytes())
    matches = both.json["faces"][0]["matches"]
    assert [m["member"] for m in matches] == ["obama", "biden"]
    assert matches[0]["distance"] < matches[1]["distance"] and matches[0]["score"] > matches[1]["score"]


@pytest.mark.parametrize("convert", [
    pytest.param(lambda im: encode(im.convert("L")), id="grayscale"),
    pytest.param(lambda im: encode(im.convert("CMYK")), id="cmyk-jpeg"),
    pytest.param(lambda im: encode(im.convert("RGBA"), "PNG"), id="rgba-png"),
    pytest.param(lambda im: encode(Image.fromarray((np.asarray(im.convert("L"), np.uint16) * 257)), "PNG"),
                 id="16-bit-png"),
    pytest.param(lambda im: encode(im, "WEBP", quality=90), id="webp"),
])
def test_image_modes_and_formats(obama2, upload, convert):
    assert first_matches(upload(convert(obama2))) == ["obama"]


def test_exif_rotation_is_honoured(obama2, upload):
    # Stored on its side with Orientation=6 (rotate 90° clockwise to view): HOG finds no face
    # in the sideways pixels, so a match proves the rotation was applied.
    sideways = obama2.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    assert upload(encode(sideways)).status_code == 422
    assert first_matches(upload(encode(sideways, exif=exif.tobytes()))) == ["obama"]


def test_large_photo_is_downscaled_and_boxes_mapped_back(photos, upload):
    full = Image.open(photos / "obama3.jpg")
    assert max(full.size) > 1024
    response = upload((photos / "obama3.jpg").read_bytes())
    box = response.json["faces"][0]["box"]
    assert response.json["image"] == {"width": full.width, "height": full.height}
    # The box is in the full image's pixels and fits the face face_recognition finds at full size.
    (top, right, bottom, left), = face_recognition.face_locations(np.asarray(full.convert("RGB")))
    assert abs(box["left"] - left) < 40 and abs(box["top"] - top) < 40
    assert abs((box["right"] - box["left"]) - (right - left)) < 60


def test_html_result_shows_numbered_photo_and_reference_photos(photos, client):
    with open(photos / "biden.jpg", "rb") as photo:
        response = client.post("/match", data={"image": photo, "cast": "presidents"},
                               content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "1 face found" in html and 'src="data:image/jpeg;base64,' in html
    assert html.index("Joe Biden") < html.index("Barack Obama")
    # Members by their face thumbnails; the face from the upload beside them, and a likely match.
    assert 'src="/thumbs/presidents/biden/biden.jpg.webp"' in html
    assert html.count('class="crop" src="data:image/jpeg;base64,') == 1
    assert "likely match" in html and "No close match" not in html


def test_no_close_match_is_said_plainly(photos, gallery):
    from face_rec import create_app
    strict = create_app({"CASTS_DIR": gallery / "casts", "ENCODINGS_DIR": gallery / "encodings", "TOLERANCE": 0.01})
    with open(photos / "obama2.jpg", "rb") as photo:
        html = strict.test_client().post("/match", data={"image": photo, "cast": "presidents"},
                                         content_type="multipart/form-data").get_data(as_text=True)
    assert "No close match in this cast" in html and "likely match" not in html
    assert html.index("No close match") < html.index("Barack Obama")  # the nearest still shown, after it


def test_cast_page_shows_face_thumbnails_served_small(client):
    html = client.get("/casts/presidents").get_data(as_text=True)
    assert 'src="/thumbs/presidents/obama/obama.jpg.webp"' in html and "/media/" not in html
    thumb = client.get("/thumbs/presidents/obama/obama.jpg.webp")
    assert thumb.status_code == 200 and thumb.mimetype == "image/webp" and len(thumb.data) < 20_000
    assert client.get("/thumbs/presidents/obama/other.jpg.webp").status_code == 404
    assert client.get("/thumbs/presidents/obama/obama.jpg").status_code == 404


def test_face_index_agrees_with_face_distance():
    rng = np.random.default_rng(7)
    known = rng.normal(0, 0.1, (500, 128)).astype(np.float32)
    members = np.array([f"m{i // 5:03d}" for i in range(500)])  # 100 members, 5 photos each
    photos = np.array([f"p{i}.jpg" for i in range(500)])
    strings = np.array([""] * 500)
    index = FaceIndex({"c": CastEncodings(known, members, photos, strings, np.zeros(500, np.int64),
                                          np.zeros(500, np.int64), {})})
    query = rng.normal(0, 0.1, 128).astype(np.float32)
    distances = face_recognition.face_distance(known, query)
    per_member = distances.reshape(100, 5).min(axis=1)
    expected = [f"m{i:03d}" for i in np.argsort(per_member)[:5]]
    found = index.search(query, 5)
    assert [m.member for m in found] == expected
    assert np.allclose([m.distance for m in found], np.sort(per_member)[:5], atol=1e-4)
    assert found[0].photo == photos[int(np.argmin(distances))]


def test_a_12_megapixel_phone_photo_is_decoded_at_half_size_with_the_same_result(photos, upload):
    """Pillow's JPEG draft mode decodes a 3024x4032 photo at 1512x2016 (a quarter of the
    pixels): the same member first, and an encoding within 0.05 of the full-size decode's."""
    from face_rec.decode import load_photo
    from face_rec.faces import detection_limit, face_encodings, face_locations
    phone = encode(Image.open(photos / "obama3.jpg").resize((3024, 4032)), quality=90)
    answer = upload(phone, cast="presidents")
    assert first_matches(answer) == ["obama"]
    assert answer.json["image"] == {"width": 3024, "height": 4032}  # the photo's own size, not the decoded one
    full = load_photo(phone, 40_000_000).pixels
    half = load_photo(phone, 40_000_000, min_side=detection_limit(8.0))
    assert full.shape == (4032, 3024, 3) and half.pixels.shape == (2016, 1512, 3) and half.scale == 2
    full_encoding = face_encodings(full, face_locations(full, 8.0, 40))[0]
    half_encoding = face_encodings(half.pixels, face_locations(half.pixels, 8.0, 40))[0]
    assert np.linalg.norm(full_encoding - half_encoding) < 0.05


def only_box(answer):
    assert answer.status_code == 200, answer.json
    (face,) = answer.json["faces"]
    return np.array([face["box"][side] for side in ("top", "right", "bottom", "left")])


def sideways(picture):
    """The picture stored on its side with EXIF Orientation 6, as phones store portraits."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(picture.transpose(Image.Transpose.ROTATE_90), quality=90, exif=exif.tobytes())


@pytest.mark.parametrize(("name", "make", "reduced"), [
    ("12 MP JPEG", lambda big: encode(big, quality=90), 2),
    ("12 MP JPEG on its side", sideways, 2),
    ("12 MP WebP", lambda big: encode(big, "WEBP", quality=80), 3),
    ("8 MP PNG", lambda big: encode(big.resize((2420, 3227)), "PNG", compress_level=1), 2),
])
def test_boxes_and_size_are_in_the_photos_own_pixels(photos, upload, name, make, reduced):
    """A large photo is decoded at 1/2 (JPEG draft) or reduced (WebP, PNG), and turned upright;
    the answer's size and boxes are still the photo's own, upright: the boxes of the same photo
    sent at a quarter of the size, scaled up, within 2 % of the photo's side."""
    from face_rec.decode import load_photo
    from face_rec.faces import detection_limit
    big = Image.open(photos / "obama3.jpg").convert("RGB").resize((3024, 4032))
    data = make(big)
    width, height = (2420, 3227) if "PNG" in name else (3024, 4032)
    assert load_photo(data, 40_000_000, min_side=detection_limit(8.0)).scale == reduced
    answer = upload(data)
    assert answer.json["image"] == {"width": width, "height": height}
    small = only_box(upload(encode(big.resize((756, 1008)), quality=95)))
    expected = small * np.array([height / 1008, width / 756, height / 1008, width / 756])
    assert np.abs(only_box(answer) - expected).max() < 0.02 * height, (only_box(answer), expected)


def data_url_image(html, css_class):
    import base64
    import re
    (data,) = re.findall(rf'class="{css_class}" src="data:image/jpeg;base64,([^"]+)"', html)
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


def test_the_page_draws_and_crops_a_large_photo_where_its_face_is(photos, client, upload):
    """The result page draws on the decoded copy (half the size of a 12 MP JPEG): its box is
    where the API's box, in the photo's own pixels, says, and the crop holds the face."""
    phone = encode(Image.open(photos / "obama3.jpg").convert("RGB").resize((3024, 4032)), quality=90)
    top, right, bottom, left = only_box(upload(phone))
    html = client.post("/match", data={"image": (io.BytesIO(phone), "phone.jpg")},
                       content_type="multipart/form-data").get_data(as_text=True)
    drawn = data_url_image(html, "photo")
    scale = drawn.width / 3024
    from face_rec.decode import load_photo
    from face_rec.faces import detection_limit
    plain = Image.open(io.BytesIO(encode(Image.fromarray(load_photo(phone, 40_000_000, detection_limit(8.0)).pixels)
                                         .resize(drawn.size), quality=85)))
    difference = np.abs(np.asarray(drawn).astype(int) - np.asarray(plain).astype(int)).max(axis=2)
    rows, columns = np.nonzero(difference > 80)  # what was drawn
    # The box's outline, and the number's label above its top-left corner.
    assert abs(columns.min() - left * scale) < 6 and abs(columns.max() - right * scale) < 6
    assert abs(rows.max() - bottom * scale) < 6 and rows.min() < top * scale
    crop = np.asarray(data_url_image(html, "crop"))
    (c_top, c_right, c_bottom, c_left), = face_recognition.face_locations(crop, 1)
    assert abs((c_left + c_right) / 2 - 64) < 16 and abs((c_top + c_bottom) / 2 - 64) < 20


@pytest.mark.parametrize("content_type, fmt", [("image/jpeg", "JPEG"), ("image/png", "PNG"), ("image/webp", "WEBP")])
def test_a_photo_sent_as_the_body(client, photos, obama2, content_type, fmt):
    """curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg' .../api/v1/match?cast=presidents&k=1"""
    data = (photos / "obama2.jpg").read_bytes() if fmt == "JPEG" else encode(obama2, fmt)
    answer = client.post("/api/v1/match?cast=presidents&k=1", data=data, content_type=content_type)
    assert first_matches(answer) == ["obama"]
    assert answer.json["cast"] == "presidents" and len(answer.json["faces"][0]["matches"]) == 1
    assert answer.json["image"] == {"width": 626, "height": 1200}
    both = client.post("/api/v1/match", data=data, content_type=f"{content_type}; charset=binary")
    assert [m["member"] for m in both.json["faces"][0]["matches"]] == ["obama", "biden"]


def test_at_most_max_faces_are_matched_the_largest_first(photos, gallery):
    """Each face costs about a third of a phone photo's match: beyond MAX_FACES, the largest."""
    app = create_app({"CASTS_DIR": gallery / "casts", "ENCODINGS_DIR": gallery / "encodings", "MAX_FACES": 2})
    picture, _ = group_photo(photos, 160, canvas=(1600, 1600))
    picture.paste(head(photos / "biden.jpg").resize((440, 440)), (580, 1140))  # a seventh face, the largest
    data = encode(picture, quality=90)
    answer = app.test_client().post("/api/v1/match", data=data, content_type="image/jpeg")
    assert answer.json["faces_found"] == 7 and [f["number"] for f in answer.json["faces"]] == [1, 2]
    widths = sorted((f["box"]["right"] - f["box"]["left"] for f in answer.json["faces"]), reverse=True)
    assert widths[0] > 190 and "biden" in [f["matches"][0]["member"] for f in answer.json["faces"]]
    html = app.test_client().post("/match", data={"image": (io.BytesIO(data), "g.jpg")},
                                  content_type="multipart/form-data").get_data(as_text=True)
    assert "7 faces found" in html and "The 2 largest are matched." in html


def test_detection_scale_follows_the_smallest_face_promised():
    from face_rec.faces import detection_side
    assert detection_side(4032, 8.0, 40) == 1000  # a phone photo shrinks to 1000 px
    assert detection_side(4032, 4.0, 40) == 2000  # smaller faces cost a bigger scan
    assert detection_side(600, 8.0, 40) == 1000  # a small photo grows to reach 8 %...
    assert detection_side(300, 8.0, 40) == 600  # ...but no face under 40 px: at most 2x


@functools.cache
def head(path):
    """The photo's face with half its height around it (found at full size once per session)."""
    image = Image.open(path).convert("RGB")
    (top, right, bottom, left), = face_recognition.face_locations(np.asarray(image))
    margin = (bottom - top) // 2
    return image.crop((left - margin, top - margin, right + margin, bottom + margin))


def group_photo(photos, face_side, canvas=(1600, 1000)):
    """Six faces from the sdist's photos pasted small on one canvas, left to right and top to
    bottom: obama, biden, obama, obama, biden, obama."""
    sources = ["obama.jpg", "biden.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama.jpg"]
    picture = Image.new("RGB", canvas, (235, 230, 220))
    for slot, name in enumerate(sources):
        crop = head(photos / name).resize((face_side * 2,) * 2)
        column, row = slot % 3, slot // 3
        picture.paste(crop, (60 + column * (canvas[0] - 120) // 3, 60 + row * (canvas[1] - 120) // 2))
    return picture, [n.split(".")[0].rstrip("23") for n in sources]


@pytest.mark.parametrize("face_side", [160, 130])
def test_group_photo_finds_every_face_down_to_the_promised_size(photos, upload, face_side):
    """Faces 160 and 130 px wide in a 1600 px photo (10 % and 8.1 % of its side; the default
    MIN_FACE_PERCENT promises 8) are all found and matched."""
    picture, expected = group_photo(photos, face_side)
    answer = upload(encode(picture, quality=90), cast="presidents")
    faces = sorted(answer.json["faces"], key=lambda f: (f["box"]["top"] // 300, f["box"]["left"]))
    assert [f["matches"][0]["member"] for f in faces] == expected


def test_smaller_faces_are_found_with_a_lower_min_face_percent(photos, gallery):
    """90 px faces in a 1600 px photo (5.6 %) are under the default promise; MIN_FACE_PERCENT=5
    finds and matches all six (a 1600 px scan: more CPU per match)."""
    app = create_app({"CASTS_DIR": gallery / "casts", "ENCODINGS_DIR": gallery / "encodings",
                      "MIN_FACE_PERCENT": 5})
    picture, expected = group_photo(photos, 90)
    answer = app.test_client().post("/api/v1/match", data={"image": (io.BytesIO(encode(picture, quality=90)), "g.jpg"),
                                                           "cast": "presidents"}, content_type="multipart/form-data")
    faces = sorted(answer.json["faces"], key=lambda f: (f["box"]["top"] // 300, f["box"]["left"]))
    assert [f["matches"][0]["member"] for f in faces] == expected


def test_a_match_nginx_has_answered_busy_is_skipped_not_worked_on(client, photos):
    """roles/nginx tells the app when it passed a match and how long it waits before answering
    busy itself: one that waited longer for a worker is skipped (499, counted), one in time is
    matched."""
    from face_rec.metrics import SKIPPED_MATCHES

    def post(waited):
        return client.post("/api/v1/match?cast=presidents", data=(photos / "obama2.jpg").read_bytes(),
                           content_type="image/jpeg", environ_overrides={
                               "FACE_REC_PASSED_AT": f"{time.time() - waited:.3f}", "FACE_REC_ANSWER_WITHIN_S": "4"})
    skipped = SKIPPED_MATCHES._value.get()
    late = post(4.5)
    assert late.status_code == 499 and late.data == b""
    assert SKIPPED_MATCHES._value.get() == skipped + 1
    assert post(1).json["faces"][0]["matches"][0]["member"] == "obama"
    assert client.get("/metrics").status_code == 200
    assert 'face_rec_http_requests_total{endpoint="/api/v1/match",method="POST",status="499"}' in \
        client.get("/metrics").get_data(as_text=True)
