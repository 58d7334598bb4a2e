"""Browsing casts and members, as pages and as JSON."""

import pytest

from face_rec.casts import CastError, load_cast


def test_cast_list_and_detail(client):
    casts = client.get("/api/v1/casts").json["casts"]
    assert casts == [{"slug": "presidents", "title": "Presidents", "members": 2,
                      "description": "Two US presidents, from face_recognition's test photos."}]
    detail = client.get("/api/v1/casts/presidents").json
    assert [(m["slug"], m["name"]) for m in detail["members"]] == [("biden", "Joe Biden"), ("obama", "Barack Obama")]
    assert detail["members"][1]["photos"] == ["/media/presidents/obama/obama.jpg"]


def test_pages(client, photos):
    assert "Presidents" in client.get("/casts").get_data(as_text=True)
    page = client.get("/casts/presidents").get_data(as_text=True)
    assert "Barack Obama" in page and "44th President" in page
    assert "Joe Biden" in client.get("/casts/presidents/biden").get_data(as_text=True)
    photo = client.get("/media/presidents/obama/obama.jpg")
    assert photo.status_code == 200 and photo.data == (photos / "obama.jpg").read_bytes()
    # As nginx sends it: browsers 10 minutes at most, shared caches never (faces of real people).
    assert set(photo.headers["Cache-Control"].split(", ")) == {"private", "max-age=600", "must-revalidate"}
    assert client.get("/").status_code == 200
    assert client.get("/casts/presidents/nobody").status_code == 404


def test_names_are_escaped(app, client, gallery):
    (gallery / "casts" / "presidents" / "obama" / "member.yml").write_text(
        "name: <script>alert(1)</script>\nrole: x\n")
    app.extensions["face_rec"].recheck_seconds = 0
    app.extensions["face_rec"]._snapshot = app.extensions["face_rec"]._load(())  # reread the catalog
    page = client.get("/casts/presidents").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


@pytest.mark.parametrize(("layout", "words"), [
    ({"cast.yml": "title: [unclosed"}, "not valid YAML"),
    ({"cast.yml": "colour: red"}, "unknown keys"),
    ({}, "missing cast.yml"),
])
def test_bad_cast_folders_are_refused_clearly(tmp_path, layout, words):
    cast = tmp_path / "show"
    cast.mkdir()
    for name, text in layout.items():
        (cast / name).write_text(text)
    with pytest.raises(CastError, match=words):
        load_cast(cast)
