#!/usr/bin/env python3
"""Casts at scale: sync a cast of 3,000 photos to a fleet, then again with nothing changed.

    bench_casts.py INVENTORY [--photos 3000] [--per-member 10]

Run it against test hosts this project started (the fleet scenario's, after `molecule
converge -s fleet`), never a production fleet: it replaces their casts, and puts the demo cast
back at the end. It builds the cast once under $FACE_REC_CACHE/bench-casts from the
face_recognition sdist's photos (each photo a different crop, size and quality of a one-face
photo, so every file and encoding differs), then times `site.yml --tags casts`:

- first sync: rsync of every photo to every host, encodings built on one host, copied to
  the others (each step timed apart, from Ansible's task profile);
- no-op: the same run again, nothing changed;
- baseline, same run: plain rsync of the same folder to a scratch folder on one host over the
  same connection (`docker exec`), the floor for moving the files.

Prints JSON, and the lines BENCHMARKS.md's table takes.
"""

import argparse
import json
import os
import pathlib
import random
import re
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import demo_cast  # noqa: E402

SOURCES = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama_small.jpg"]
CACHE = pathlib.Path(os.environ.get("FACE_REC_CACHE", "/var/cache/face_rec"))


def build_cast(dest, photos, per_member):
    """A cast of `photos` distinct JPEGs, `per_member` per member; built once, then reused."""
    from PIL import Image

    cast_dir = dest / "bench"
    stamp = cast_dir / f".built-{photos}-{per_member}"
    if stamp.exists():
        return dest
    images = demo_cast.test_images()
    sources = [Image.open(images / name).convert("RGB") for name in SOURCES if (images / name).exists()]
    rng = random.Random(20261126)
    cast_dir.mkdir(parents=True, exist_ok=True)
    (cast_dir / "cast.yml").write_text(f"title: Bench\ndescription: {photos} photos for bench_casts.py.\n")
    for number in range(photos):
        member = f"m{number // per_member:04d}"
        member_dir = cast_dir / member
        if not member_dir.exists():
            member_dir.mkdir()
            (member_dir / "member.yml").write_text(f"name: Member {member}\nrole: bench\n")
        source = sources[number % len(sources)]
        width, height = source.size
        # A crop that keeps the middle (where these photos' face is), scaled to 320-400 px.
        margin = rng.uniform(0.0, 0.12)
        box = (int(width * margin), int(height * margin), int(width * (1 - margin)), int(height * (1 - margin)))
        photo = source.crop(box)
        side = rng.randint(320, 400)
        photo.thumbnail((side, side))
        photo.save(member_dir / f"p{number:05d}.jpg", quality=rng.randint(80, 92))
    stamp.touch()
    return dest


def task_seconds(output, name):
    """Seconds of one task from the profile_tasks recap ("role : Task name ---- 1.23s")."""
    found = re.search(re.escape(name) + r"[^\n]*?-+ ([\d.]+)s", output)
    return float(found.group(1)) if found else 0.0


def casts_run(inventory, casts_src):
    command = ["ansible-playbook", "-i", inventory, str(ROOT / "site.yml"), "--tags", "casts"]
    if casts_src:
        command += ["-e", json.dumps({"faceapp_casts_src": str(casts_src)})]
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "100"}
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"site.yml --tags casts failed:\n{result.stdout[-3000:]}")
    return {"total_s": round(seconds, 1),
            "sync_s": task_seconds(result.stdout, "faceapp : Sync the casts"),
            "encodings_s": task_seconds(result.stdout, "faceapp : Build the casts' encodings"),
            "copy_encodings_s": round(task_seconds(result.stdout, "faceapp : Fetch the encodings")
                                      + task_seconds(result.stdout, "faceapp : Copy the encodings to the other hosts"), 2)}


def plain_rsync(host, casts_src):
    """The floor: rsync of the same folder to a scratch folder over `docker exec`."""
    scratch = "/var/tmp/bench-casts-rsync"
    subprocess.run(["docker", "exec", host, "rm", "-rf", scratch], check=True)
    started = time.monotonic()
    subprocess.run(["rsync", "-a", "--delete", "--rsh=docker exec -i", f"{casts_src}/", f"{host}:{scratch}/"], check=True)
    seconds = time.monotonic() - started
    subprocess.run(["docker", "exec", host, "rm", "-rf", scratch], check=True)
    return round(seconds, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inventory")
    parser.add_argument("--photos", type=int, default=3000)
    parser.add_argument("--per-member", type=int, default=10)
    parser.add_argument("--host", default="face-rec-fleet-a", help="test host for the plain rsync baseline")
    args = parser.parse_args()
    casts_src = build_cast(CACHE / "bench-casts", args.photos, args.per_member)
    files = sum(1 for p in casts_src.rglob("*") if p.is_file() and not p.name.startswith("."))
    megabytes = sum(p.stat().st_size for p in casts_src.rglob("*") if p.is_file()) / 1e6
    with tempfile.TemporaryDirectory():
        baseline = plain_rsync(args.host, casts_src)
        first = casts_run(args.inventory, casts_src)
        noop = casts_run(args.inventory, casts_src)
        restored = casts_run(args.inventory, None)  # the demo cast back
    report = {"photos": args.photos, "files": files, "megabytes": round(megabytes, 1),
              "plain_rsync_one_host_s": baseline, "first": first, "noop": noop,
              "sync_vs_plain_rsync": round(first["sync_s"] / baseline, 2) if baseline else None,
              "encode_photos_per_s": round(args.photos / first["encodings_s"], 1) if first["encodings_s"] else None,
              "demo_cast_back_s": restored["total_s"]}
    print(json.dumps(report, indent=1))
    print(f"| first sync, {args.photos} photos ({files} files, {megabytes:.0f} MB), every host | {first['sync_s']} s "
          f"(plain rsync to one host: {baseline} s) |")
    print(f"| encodings of {args.photos} new photos, built on one host | {first['encodings_s']} s, "
          f"copied to the others in {first['copy_encodings_s']} s |")
    print(f"| no-op run, casts part (`site.yml --tags casts`, whole play) | {noop['total_s']} s "
          f"(sync {noop['sync_s']} s, encodings {noop['encodings_s']} s) |")


if __name__ == "__main__":
    main()
