#!/usr/bin/env python3
"""Build the demo cast from the real photos that the face_recognition 1.3.0 sdist ships.

    demo_cast.py DEST_CASTS_DIR

The sdist is fetched once with pip and its tests/test_images/ kept in the cache
($FACE_REC_CACHE, default /var/cache/face_rec): no third-party photo is committed here.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile

SDIST = "face_recognition==1.3.0"
CACHE = pathlib.Path(os.environ.get("FACE_REC_CACHE", "/var/cache/face_rec")) / "test-images" / "face_recognition-1.3.0"
DEMO_CAST = {
    "slug": "presidents",
    "cast_yml": "title: Presidents\ndescription: Two US presidents, from face_recognition's test photos.\n",
    "members": {
        "obama": ("obama.jpg", "name: Barack Obama\nrole: 44th President\n"),
        "biden": ("biden.jpg", "name: Joe Biden\nrole: 46th President\n"),
    },
}


def test_images():
    """The sdist's tests/test_images folder, fetched once."""
    if (CACHE / "obama.jpg").is_file():
        return CACHE
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
                        "face_recognition", "-d", tmp, SDIST], check=True)
        archive = next(pathlib.Path(tmp).glob("face_recognition-1.3.0.tar.gz"))
        staging = pathlib.Path(tmp) / "images"
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers()
                       if "/tests/test_images/" in m.name and m.isfile() and "/" not in m.name.split("/tests/test_images/")[1]]
            for member in members:
                member.name = pathlib.PurePosixPath(member.name).name
            tar.extractall(staging, members=members, filter="data")
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(CACHE, ignore_errors=True)
        shutil.move(str(staging), CACHE)
    return CACHE


def build_demo_cast(dest):
    """Write the demo cast into dest (a casts dir); return its folder."""
    images = test_images()
    cast_dir = pathlib.Path(dest) / DEMO_CAST["slug"]
    cast_dir.mkdir(parents=True, exist_ok=True)
    (cast_dir / "cast.yml").write_text(DEMO_CAST["cast_yml"])
    for member, (photo, member_yml) in DEMO_CAST["members"].items():
        (cast_dir / member).mkdir(exist_ok=True)
        (cast_dir / member / "member.yml").write_text(member_yml)
        if not (cast_dir / member / photo).exists():
            shutil.copy2(images / photo, cast_dir / member / photo)
    return cast_dir


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(build_demo_cast(sys.argv[1]))
