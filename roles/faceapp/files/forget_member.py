#!/usr/bin/env python3
"""Run on a face_rec host by playbooks/forget.yml (ansible.builtin.script, as root):

  forget_member.py scrub-logs <cast> <member>   drop the log lines that name the member
  forget_member.py prove <cast> <member> <app root>   what is left of them, as JSON

The access logs and the app's log never name a member (roles/nginx's log format,
face_rec/privacy.py); nginx's error log can (a request line in a limit or an error message),
so forgetting scrubs it, rotated and compressed copies included. Files are rewritten in place
(same inode), so nginx keeps writing to them without a reopen."""

import gzip
import json
import os
import pathlib
import subprocess
import sys

LOGS = pathlib.Path("/var/log/nginx")
# Where a copy of a member's photos, thumbnails or logs could be: the app's tree, logs, nginx's
# state and cache, every temporary folder.
SEARCHED = ["/opt/face_rec", "/var/log", "/var/lib/nginx", "/var/cache/nginx", "/tmp", "/var/tmp", "/root", "/home"]


def needle(cast, member):
    return f"/{cast}/{member}"


def naming(line, cast, member):
    """A log line that names the member's path (its page, photos or thumbnails)."""
    text = needle(cast, member)
    start = line.find(text)
    while start >= 0:
        after = line[start + len(text):start + len(text) + 1]
        if after in ("", "/", " ", "?", '"', "\n", "#"):
            return True
        start = line.find(text, start + 1)
    return False


def read_lines(path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="surrogateescape") as log:
        return log.readlines()


def scrub_logs(cast, member):
    scrubbed = {}
    for path in sorted(LOGS.glob("*")):
        if not path.is_file():
            continue
        lines = read_lines(path)
        kept = [line for line in lines if not naming(line, cast, member)]
        if len(kept) == len(lines):
            continue
        text = "".join(kept).encode("utf-8", errors="surrogateescape")
        with open(path, "r+b") as log:
            log.write(gzip.compress(text) if path.suffix == ".gz" else text)
            log.truncate()
        scrubbed[str(path)] = len(lines) - len(kept)
    print(json.dumps({"scrubbed": scrubbed}))


def prove(cast, member, app_root):
    text = needle(cast, member)
    files = []
    for root in SEARCHED:
        for folder, subfolders, names in os.walk(root):
            for name in subfolders + names:
                path = os.path.join(folder, name)
                # Any copy kept in the layout every copy uses (<cast>/<member>/...), and in the
                # app's data any file or folder named for them.
                in_data = path.startswith(f"{app_root}/shared/")
                if text + "/" in path + "/" or (in_data and (name == member or name.startswith(member + "."))):
                    files.append(path)
    log_lines = {}
    for path in sorted(LOGS.glob("*")):
        if path.is_file():
            count = sum(naming(line, cast, member) for line in read_lines(path))
            if count:
                log_lines[str(path)] = count
    journal = subprocess.run(["journalctl", "--no-pager", "-o", "cat", "-u", "main", "-u", "nginx"],
                             capture_output=True, text=True, check=False).stdout.splitlines()
    journal_lines = sum(naming(line, cast, member) for line in journal)
    encodings = pathlib.Path(app_root) / "shared" / "encodings" / f"{cast}.npz"
    rows = left = None
    if encodings.exists():
        # The app's own numpy reads its encodings file (members: encoded rows; skipped_members:
        # photos without a face, kept so they are not tried again).
        python = pathlib.Path(app_root) / "venv" / "bin" / "python"
        counted = subprocess.run(
            [str(python), "-c",
             "import json, sys, numpy; d = numpy.load(sys.argv[1]); m = sys.argv[2]; "
             "print(json.dumps([int((d['members'] == m).sum() + (d['skipped_members'] == m).sum()), len(d['members'])]))",
             str(encodings), member], capture_output=True, text=True, check=True)
        rows, left = json.loads(counted.stdout)
    # forget.yml keeps one of their photos in such a folder for its check, and removes it.
    probes = sorted(str(path) for folder in ("/tmp", "/var/tmp") for path in pathlib.Path(folder).glob("*.face_rec-forget"))
    print(json.dumps({"files": files + probes, "log_lines": log_lines, "journal_lines": journal_lines,
                      "encoding_rows": rows, "encodings_left": left, "searched": SEARCHED}))


if __name__ == "__main__":
    command, cast_slug, member_slug = sys.argv[1:4]
    if command == "scrub-logs":
        scrub_logs(cast_slug, member_slug)
    elif command == "prove":
        prove(cast_slug, member_slug, sys.argv[4])
    else:
        sys.exit(f"unknown command {command}")
