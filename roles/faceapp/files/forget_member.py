#!/usr/bin/env python3
"""Run on a face_rec host by playbooks/forget.yml (ansible.builtin.script, as root):

  forget_member.py scrub-logs <cast> <member>   drop the log lines that name the member
  forget_member.py prove <cast> <member> --app-root R --venv V --unit U...   what is left, as JSON

The access logs and the app's log never name a member (roles/nginx's log format,
face_rec/privacy.py), nor do uWSGI's own lines (nginx passes it a REQUEST_URI without the
member); nginx's error log can (a request line in a limit or an error message), so forgetting
scrubs it, rotated and compressed copies included. A line names the member in any spelling
nginx could have been sent and logs as it was: percent-encoded (once or more), in another case,
with doubled slashes or `.` segments. Files are rewritten in place (same inode), so nginx keeps
writing to them without a reopen. The app's root, venv and units are the play's (roles/face_rec),
never assumed here."""

import argparse
import gzip
import json
import os
import pathlib
import re
import subprocess
import urllib.parse

LOGS = pathlib.Path("/var/log/nginx")
# Where a copy of a member's photos, thumbnails or logs could be, besides the app's root: logs,
# nginx's state and cache, every temporary folder, home folders.
SEARCHED = ["/var/log", "/var/lib/nginx", "/var/cache/nginx", "/tmp", "/var/tmp", "/run", "/root", "/home"]
# What may follow the member's slug in a path that names them.
ENDS = ("", "/", " ", "?", '"', "\n", "\r", "\t", "#", ";", "\\", "'", ",", "&")


def needle(cast, member):
    return f"/{cast}/{member}"


def canonical(line):
    """The line as nginx would route what it names: percent-decoded until nothing changes (a
    double encoding names the member to whoever reads the log), `.` segments and doubled
    slashes dropped, lower case (slugs are)."""
    for _ in range(5):
        decoded = urllib.parse.unquote(line, errors="surrogateescape")
        if decoded == line:
            break
        line = decoded
    line = re.sub(r"/(?:\./)+", "/", line)
    line = re.sub(r"/{2,}", "/", line)
    line = re.sub(r"/\.(?=[\s?\"#]|$)", "", line)
    return line.lower()


def naming(line, cast, member):
    """A log line that names the member's path (its page, photos or thumbnails), in any spelling."""
    text, line = needle(cast, member), canonical(line)
    start = line.find(text)
    while start >= 0:
        if line[start + len(text):start + len(text) + 1] in ENDS:
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


def prove(cast, member, app_root, venv, units):
    text = needle(cast, member)
    searched = [app_root, *SEARCHED]
    files = []
    for root in searched:
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
    journal = subprocess.run(["journalctl", "--no-pager", "-o", "cat", *(f"--unit={unit}" for unit in units)],
                             capture_output=True, text=True, check=False).stdout.splitlines()
    journal_lines = sum(naming(line, cast, member) for line in journal)
    encodings = pathlib.Path(app_root) / "shared" / "encodings" / f"{cast}.npz"
    rows = left = None
    if encodings.exists():
        # The app's own numpy reads its encodings file (members: encoded rows; skipped_members:
        # photos without a face, kept so they are not tried again).
        python = pathlib.Path(venv) / "bin" / "python"
        counted = subprocess.run(
            [str(python), "-c",
             "import json, sys, numpy; d = numpy.load(sys.argv[1]); m = sys.argv[2]; "
             "print(json.dumps([int((d['members'] == m).sum() + (d['skipped_members'] == m).sum()), len(d['members'])]))",
             str(encodings), member], capture_output=True, text=True, check=True)
        rows, left = json.loads(counted.stdout)
    # forget.yml keeps one of their photos in such a folder for its check, and removes it.
    probes = sorted(str(path) for folder in ("/run", "/tmp", "/var/tmp") for path in pathlib.Path(folder).glob("*.face_rec-forget"))
    print(json.dumps({"files": files + probes, "log_lines": log_lines, "journal_lines": journal_lines,
                      "encoding_rows": rows, "encodings_left": left, "searched": searched, "units": units}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("command", choices=["scrub-logs", "prove"])
    parser.add_argument("cast")
    parser.add_argument("member")
    parser.add_argument("--app-root", help="the app's root (face_rec_root)")
    parser.add_argument("--venv", help="the app's venv (face_rec_venv), whose numpy reads the encodings")
    parser.add_argument("--unit", dest="units", action="append", default=[], help="a unit whose journal is read")
    options = parser.parse_args(argv)
    if options.command == "scrub-logs":
        scrub_logs(options.cast, options.member)
    elif not (options.app_root and options.venv and options.units):
        parser.error("prove needs --app-root, --venv and at least one --unit")
    else:
        prove(options.cast, options.member, options.app_root.rstrip("/"), options.venv, options.units)


if __name__ == "__main__":
    main()
