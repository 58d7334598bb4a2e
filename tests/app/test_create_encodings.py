"""create_encodings on a real cast: incremental, truthful about changes, safe on bad input."""

import json
import shutil
import subprocess
import sys

import face_recognition
import numpy as np
from PIL import Image

from face_rec.create_encodings import main as create_encodings
from face_rec.encodings_store import read_cast_encodings


def face_crop(path):
    """The face in a photo with a margin, 400x400."""
    image = Image.open(path).convert("RGB")
    (top, right, bottom, left), = face_recognition.face_locations(np.asarray(image))
    margin = (bottom - top) // 2
    return image.crop((left - margin, top - margin, right + margin, bottom + margin)).resize((400, 400))


def run(gallery, capsys):
    code = create_encodings(["--casts-dir", str(gallery / "casts"), "--encodings-dir", str(gallery / "encodings"),
                             "--jobs", "2"])
    captured = capsys.readouterr()
    return code, captured.out


def test_rerun_with_nothing_changed_says_unchanged(gallery, capsys):
    before = (gallery / "encodings" / "presidents.npz").stat().st_mtime_ns
    code, out = run(gallery, capsys)
    assert code == 0
    assert "presidents: up to date, 2 encodings" in out
    assert out.strip().splitlines()[-1].startswith("encodings: unchanged")
    assert (gallery / "encodings" / "presidents.npz").stat().st_mtime_ns == before


def test_new_changed_and_removed_photos(gallery, photos, capsys):
    cast = gallery / "casts" / "presidents"
    shutil.copy(photos / "obama2.jpg", cast / "obama" / "obama2.jpg")
    code, out = run(gallery, capsys)
    assert code == 0 and "presidents: +1 -0, 3 encodings" in out and "encodings: changed" in out
    stored = read_cast_encodings(gallery / "encodings" / "presidents.npz")
    assert sorted(zip(stored.members, stored.photos)) == [
        ("biden", "biden.jpg"), ("obama", "obama.jpg"), ("obama", "obama2.jpg")]
    assert stored.encodings.dtype == np.float32 and stored.encodings.shape == (3, 128)

    shutil.copy(photos / "obama3.jpg", cast / "obama" / "obama2.jpg")  # same name, new content
    code, out = run(gallery, capsys)
    assert "presidents: +1 -0, 3 encodings" in out

    (cast / "obama" / "obama2.jpg").unlink()
    code, out = run(gallery, capsys)
    assert "presidents: +0 -1, 2 encodings" in out and "encodings: changed" in out


def test_photo_without_a_face_or_with_two_is_skipped_and_reported(gallery, photos, capsys):
    cast = gallery / "casts" / "presidents"
    Image.new("RGB", (400, 300), (90, 90, 90)).save(cast / "biden" / "blank.jpg")
    faces = [face_crop(photos / "obama2.jpg"), face_crop(photos / "biden.jpg")]
    pair = Image.new("RGB", (900, 450), (255, 255, 255))
    pair.paste(faces[0], (0, 0))
    pair.paste(faces[1], (450, 0))
    pair.save(cast / "biden" / "pair.jpg")
    code, out = run(gallery, capsys)
    assert code == 0
    assert "presidents: skipped biden/blank.jpg: no face found" in out
    assert "presidents: skipped biden/pair.jpg: 2 faces found" in out
    assert "2 encodings" in out
    # Remembered: the next run neither re-detects them nor reports a change.
    code, out = run(gallery, capsys)
    assert "encodings: unchanged" in out


def test_bad_folder_name_fails_clearly_and_loses_nothing(gallery, photos, capsys):
    before = (gallery / "encodings" / "presidents.npz").read_bytes()
    bad = gallery / "casts" / "presidents" / "Not A Slug"
    bad.mkdir()
    shutil.copy(photos / "obama2.jpg", bad / "x.jpg")
    code = create_encodings(["--casts-dir", str(gallery / "casts"), "--encodings-dir", str(gallery / "encodings")])
    err = capsys.readouterr().err
    assert code == 2 and "Not A Slug" in err and "slug" in err
    assert (gallery / "encodings" / "presidents.npz").read_bytes() == before


def test_running_app_picks_up_new_encodings_without_restart(app, client, gallery, photos, capsys):
    app.extensions["face_rec"].recheck_seconds = 0
    assert client.get("/healthz").json["encodings"] == 2
    member = gallery / "casts" / "presidents" / "obama-again"
    member.mkdir()
    shutil.copy(photos / "obama3.jpg", member / "obama3.jpg")
    run(gallery, capsys)
    assert client.get("/healthz").json["encodings"] == 3
    assert "obama-again" in [m["slug"] for m in client.get("/api/v1/casts/presidents").json["members"]]


def test_thumbnails_are_small_squares_centred_on_the_face(gallery):
    thumbs = gallery / "thumbs" / "presidents"
    for member, photo in (("obama", "obama.jpg"), ("biden", "biden.jpg")):
        path = thumbs / member / f"{photo}.webp"
        image = Image.open(path)
        assert image.format == "WEBP" and image.size == (192, 192) and path.stat().st_size < 20_000
        boxes = face_recognition.face_locations(np.asarray(image.convert("RGB")))
        assert len(boxes) == 1, (member, boxes)
        top, right, bottom, left = boxes[0]
        assert abs((left + right) / 2 - 96) < 25 and abs((top + bottom) / 2 - 96) < 35, (member, boxes)
        assert right - left > 60  # the face fills the thumbnail, not a jacket


def test_thumbnails_follow_photos_and_come_back_when_missing(gallery, photos, capsys):
    thumbs = gallery / "thumbs" / "presidents"
    (thumbs / "biden" / "biden.jpg.webp").unlink()
    shutil.copy(photos / "obama2.jpg", gallery / "casts" / "presidents" / "obama" / "obama2.jpg")
    (gallery / "casts" / "presidents" / "obama" / "obama.jpg").unlink()
    code, out = run(gallery, capsys)
    assert code == 0 and "encodings: changed" in out
    assert sorted(p.name for p in thumbs.glob("*/*.webp")) == ["biden.jpg.webp", "obama2.jpg.webp"]


def test_a_skipped_photo_is_tried_again_when_the_detection_settings_change(gallery, photos, capsys):
    """A face of under 4 % of the photo's side is below the default promise (8 %): skipped, and
    remembered as skipped; with --min-face-percent 5 it is detected and encoded."""
    small = Image.new("RGB", (1600, 1000), (235, 230, 220))
    small.paste(face_crop(photos / "obama2.jpg").resize((120, 120)), (700, 400))  # a 60 px face
    small.save(gallery / "casts" / "presidents" / "obama" / "far.jpg")
    code, out = run(gallery, capsys)
    assert code == 0 and "skipped obama/far.jpg: no face found" in out
    code, out = run(gallery, capsys)
    assert "encodings: unchanged" in out
    code = create_encodings(["--casts-dir", str(gallery / "casts"), "--encodings-dir", str(gallery / "encodings"),
                             "--min-face-percent", "5"])
    out = capsys.readouterr().out
    assert code == 0 and "presidents: +1 -0, 3 encodings" in out
    stored = read_cast_encodings(gallery / "encodings" / "presidents.npz")
    assert ("obama", "far.jpg") in set(zip(stored.members, stored.photos)) and not stored.skipped
    assert stored.detection == "5%/40px"


def test_the_command_loads_no_web_app():
    # It runs on its own (roles/faceapp, casts.yml): casts and encodings, no Flask routes.
    code = "import json, sys, face_rec.create_encodings; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert not {"flask", "face_rec.main", "face_rec.browse_casts", "face_rec.views"} & set(loaded)


def test_a_member_removed_leaves_no_thumbnail_folder_named_for_them(gallery, capsys):
    """A member forgotten (or a stray one dropped on a host that joins the fleet): their
    thumbnails go, and so does the folder that bore their name."""
    shutil.rmtree(gallery / "casts" / "presidents" / "biden")
    code, out = run(gallery, capsys)
    assert code == 0 and "encodings: changed" in out
    assert not (gallery / "thumbs" / "presidents" / "biden").exists()
    assert (gallery / "thumbs" / "presidents" / "obama" / "obama.jpg.webp").is_file()
