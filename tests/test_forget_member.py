"""roles/faceapp/files/forget_member.py, which forget.yml runs on every host: a log line names a
member in every spelling nginx could have logged, and the proof looks where the play says the
app is (a root of one's own), never where a default would put it."""

import importlib.util
import io
import json
import pathlib
import sys
from contextlib import redirect_stdout

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("forget_member", ROOT / "roles/faceapp/files/forget_member.py")
forget_member = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(forget_member)


@pytest.mark.parametrize("line", [
    '"GET /casts/presidents/biden HTTP/1.1"',
    'request: "GET /casts/pres%69dents/bid%65n HTTP/1.1"',
    'request: "GET /casts/presidents/%2562iden HTTP/1.1"',  # encoded twice
    '"GET //casts//presidents///biden HTTP/1.1"',
    '"GET /casts/./presidents/./biden/ HTTP/1.1"',
    '"GET /CASTS/Presidents/BIDEN?x=1 HTTP/1.1"',
    '"GET /media/presidents/biden/biden.jpg HTTP/1.1"',
    'open() "/opt/x/shared/thumbs/presidents/biden/biden.jpg.webp" failed',
    "GET /casts/presidents/biden",
    "GET /casts/presidents%2Fbiden HTTP/1.1",
    "GET /casts/presidents/biden;jsessionid=1 HTTP/1.1",
])
def test_every_spelling_of_their_path_names_them(line):
    assert forget_member.naming(line, "presidents", "biden")


@pytest.mark.parametrize("line", [
    '"GET /casts/presidents/bidenfan HTTP/1.1"',
    '"GET /casts/presidents/- HTTP/1.1"',
    '"GET /casts/presidents-biden HTTP/1.1"',
    '"GET /casts/presidents HTTP/1.1" 200 "biden"',
    '"GET /casts/presidents/obama HTTP/1.1"',
])
def test_other_paths_do_not(line):
    assert not forget_member.naming(line, "presidents", "biden")


def test_scrub_drops_every_spelling_and_keeps_the_rest(tmp_path, monkeypatch):
    logs = tmp_path / "nginx"
    logs.mkdir()
    kept = ['"GET /casts/presidents/- HTTP/1.1" 200\n', '"GET /casts/presidents/obama HTTP/1.1" 200\n']
    (logs / "error.log").write_text("".join(['"GET /casts/pres%69dents/biden HTTP/1.1"\n', kept[0],
                                             '"GET //casts/presidents//biden HTTP/1.1"\n', kept[1]]))
    monkeypatch.setattr(forget_member, "LOGS", logs)
    out = io.StringIO()
    with redirect_stdout(out):
        forget_member.main(["scrub-logs", "presidents", "biden"])
    assert json.loads(out.getvalue()) == {"scrubbed": {str(logs / "error.log"): 2}}
    assert (logs / "error.log").read_text() == "".join(kept)


def test_the_proof_looks_under_the_root_it_is_given(tmp_path, monkeypatch):
    root = tmp_path / "srv" / "fr"
    (root / "shared/casts/presidents/biden").mkdir(parents=True)
    (root / "shared/casts/presidents/biden/biden.jpg").write_bytes(b"a photo")
    (root / "shared/encodings").mkdir()
    np.savez(root / "shared/encodings/presidents.npz", members=np.array(["obama", "biden"]),
             skipped_members=np.array([], dtype=str))
    (tmp_path / "nginx").mkdir()
    monkeypatch.setattr(forget_member, "LOGS", tmp_path / "nginx")
    monkeypatch.setattr(forget_member, "SEARCHED", [])
    out = io.StringIO()
    with redirect_stdout(out):
        forget_member.main(["prove", "presidents", "biden", "--app-root", str(root),
                            "--venv", str(pathlib.Path(sys.executable).parents[1]), "--unit", "fr-app"])
    found = json.loads(out.getvalue())
    assert found["searched"] == [str(root)] and found["units"] == ["fr-app"]
    assert str(root / "shared/casts/presidents/biden") in found["files"]
    assert found["encoding_rows"] == 1 and found["encodings_left"] == 2


def test_the_proof_refuses_to_guess_where_the_app_is():
    with pytest.raises(SystemExit):
        forget_member.main(["prove", "presidents", "biden"])
