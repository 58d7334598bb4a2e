#!/usr/bin/env python3
"""Requests our own client never sends, seeded and bounded, against the site through nginx.

    request_fuzz.py URL [--count 2000] [--seed 18] [--photo PHOTO]

Odd paths, methods, query parameters, multipart shapes, raw bodies and content types, small and
large bodies, and connections cut mid-body, as the internet sends them. Prints the answers by
status; exits 1 when any answer is a 5xx other than a 503 with Retry-After (shedding). Point
it only at 127.0.0.1 or at test hosts this project started. The Molecule scenarios run it.
"""

import argparse
import collections
import dataclasses
import http.client
import json
import random
import socket
import sys
import urllib.parse

PATHS = ["/", "/casts", "/casts/presidents", "/casts/presidents/obama", "/casts/presidents/nobody",
         "/casts/nope", "/casts/Presidents", "/match", "/api/v1/match", "/api/v1/casts",
         "/api/v1/casts/presidents", "/api/v1/casts/%ff", "/healthz", "/metrics", "/static/style.css",
         "/media/presidents/obama/obama.jpg", "/media/presidents/obama/member.yml", "/media/../etc/passwd",
         "/thumbs/presidents/obama/obama.jpg.webp", "/%ff%fe", "/casts/%C0%AE%C0%AE/x", "//casts",
         "/casts/presidents/../../../etc/passwd", "/api/v2/match", "/index.php", "/.env", "/casts?",
         "/casts/" + "a" * 300, "/" + "b" * 5000]
METHODS = ["GET"] * 4 + ["POST"] * 4 + ["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "PROPFIND", "FOO"]
QUERIES = ["", "k=2", "k=\u00b2", "k=%C2%B2", "k=\u0663", "k=99999999999999999999999", "k=-1", "k=0", "k=",
           "k=1&k=2", "k=1.5", "k=0x10", "k=%00", "cast=presidents", "cast=%ff", "cast=", "cast=../etc",
           "cast=" + "c" * 400, "cast=presidents&k=3", "%zz=1", "a=%", "=", "&&&", "q=" + "%e2%82" * 50,
           "image=x", "cast[]=1"]
TYPES = [None, "image/jpeg", "image/png", "image/webp", "image/gif", "application/octet-stream", "text/plain",
         "application/json", "application/x-www-form-urlencoded", "multipart/form-data",
         "multipart/form-data; boundary=", "multipart/form-data; boundary=zz", "image/jpeg; charset=utf-8",
         "IMAGE/PNG", "*/*", "\u00e9/\u00e9"]


@dataclasses.dataclass
class Request:
    method: str
    target: str
    headers: dict
    body: bytes
    cut: bool = False  # send half the body, then close the connection


def multipart(rng, photo):
    boundary = "b%08x" % rng.getrandbits(32)
    field = rng.choice(["image", "image", "photo", "", "image\u00e9"])
    filename = rng.choice(["a.jpg", "", "../../x.jpg", "\u00e9\u00e9.png", "a" * 300, 'q"uote.jpg'])
    content = rng.choice([b"", b"not a photo", photo[:2000], photo, rng.randbytes(30000)])
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
             f"Content-Type: image/jpeg\r\n\r\n".encode() + content + b"\r\n"]
    if rng.random() < 0.3:  # a second file, or a plain field
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="b.jpg"\r\n\r\n'
                     .encode() + rng.randbytes(100) + b"\r\n")
    if rng.random() < 0.3:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="k"\r\n\r\n{rng.choice(QUERIES)}\r\n'
                     .encode())
    body = b"".join(parts) + (f"--{boundary}--\r\n".encode() if rng.random() < 0.8 else b"")
    kind = rng.choice([f"multipart/form-data; boundary={boundary}", "multipart/form-data; boundary=other",
                       f"multipart/mixed; boundary={boundary}"])
    return body, kind


def requests_for(seed, count, photo):
    rng = random.Random(seed)
    for _ in range(count):
        method, path, query = rng.choice(METHODS), rng.choice(PATHS), rng.choice(QUERIES)
        headers = {}
        roll = rng.random()
        if method in ("GET", "HEAD", "OPTIONS", "TRACE", "DELETE") and roll < 0.7:
            body = b""
        elif roll < 0.35:
            body, headers["Content-Type"] = multipart(rng, photo)
        else:
            size = rng.choice([0, 1, 100, 5000, 20000, 200000, 400000, 1500000])
            body = rng.choice([rng.randbytes(size), (photo * (size // len(photo) + 1))[:size], photo[:size]])
            kind = rng.choice(TYPES)
            if kind is not None:
                headers["Content-Type"] = kind
        if rng.random() < 0.1:
            headers[rng.choice(["X-Forwarded-For", "X-Real-IP", "Forwarded"])] = rng.choice(
                ["1.2.3.4", "1.2.3.4, 10.0.0.1", "for=1.2.3.4", "unknown", "::1", "999.1.1.1", "a" * 200])
        if rng.random() < 0.05:
            headers["Accept"] = rng.choice(["application/json", "text/html", "*/*", "\u00e9"])
        # Non-ASCII goes out percent-encoded, as a client's URL library sends it; bad escapes stay.
        target = urllib.parse.quote(path, safe="/%?=&") + ("?" + urllib.parse.quote(query, safe="/%=&[]") if query else "")
        yield Request(method, target, headers, body, cut=bool(body) and rng.random() < 0.02)


def send(host, port, request, timeout=60):
    """The answer's status and Retry-After, or (0, why) when none came."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.putrequest(request.method, request.target, skip_accept_encoding=True)
        for name, value in request.headers.items():
            connection.putheader(name, value.encode("utf-8"))
        connection.putheader("Content-Length", str(len(request.body)))
        connection.endheaders()
        if request.cut:
            connection.send(request.body[:len(request.body) // 2])
            connection.sock.shutdown(socket.SHUT_RDWR)
            return None
        connection.send(request.body)
        answer = connection.getresponse()
        answer.read()
        return answer.status, answer.getheader("Retry-After") or ""
    except (OSError, http.client.HTTPException) as error:
        return 0, type(error).__name__
    finally:
        connection.close()


def run(url, count=2000, seed=18, photo=b""):
    """{status: count} of every answer, and the requests that got a deliberate-failure answer."""
    parsed = urllib.parse.urlsplit(url)
    statuses, bad = collections.Counter(), []
    for request in requests_for(seed, count, photo):
        answer = send(parsed.hostname, parsed.port or 80, request)
        if answer is None:
            statuses["cut"] += 1
            continue
        status, retry_after = answer
        statuses[status] += 1
        if status == 0 or (status >= 500 and not (status == 503 and retry_after)):
            bad.append((request.method, request.target[:120], request.headers.get("Content-Type"), len(request.body),
                        status, retry_after))
    return statuses, bad


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--photo", help="a real photo, used whole and in pieces")
    options = parser.parse_args()
    photo = open(options.photo, "rb").read() if options.photo else b"\xff\xd8\xff\xe0" + b"\0" * 1000
    statuses, bad = run(options.url, options.count, options.seed, photo)
    print(json.dumps({"answers by status": {str(k): v for k, v in sorted(statuses.items(), key=str)},
                      "failed": bad[:50]}, indent=1))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
