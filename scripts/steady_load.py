#!/usr/bin/env python3
"""A steady load through nginx, bounded in time and count, that counts every failed request.

    steady_load.py URL [--clients 4] [--seconds 30] [--max-requests 5000] [--photo PHOTO] [--cast CAST]
                   [--expect-member MEMBER]

Each client loops over a page, a cast's page and (with a photo) a match until the time or the
count runs out. A request fails when it gets no answer or an answer that is not 2xx, and a
match also when --expect-member is given and another member comes first (a broken release). Point it
only at 127.0.0.1 or at test hosts this project started. The Molecule scenarios use it to
count failed requests across restarts, kills and deploys; on call can run it by hand.
"""

import argparse
import collections
import dataclasses
import itertools
import json
import pathlib
import sys
import threading
import time

import requests


@dataclasses.dataclass
class Answer:
    kind: str          # "page", "cast", "match"
    status: int        # 0 when no answer came (connection refused, reset, timeout)
    seconds: float
    error: str = ""
    retry_after: str = ""
    body: str = ""     # the start of a failed answer's body

    @property
    def failed(self):
        return not 200 <= self.status < 300 or bool(self.error)


class SteadyLoad:
    """`clients` threads sending requests in a loop until stop(), `seconds` or `max_requests`.

    Use it as a context manager around what you want to measure; read `answers` after."""

    def __init__(self, base_url, clients=4, seconds=60, max_requests=5000, photo=None, cast=None,
                 kinds=None, timeout=30, verify=True, auth=None, pause=0.05, honor_retry_after=False,
                 expect_member=None):
        self.base_url = base_url.rstrip("/")
        self.clients, self.seconds, self.max_requests = clients, seconds, max_requests
        self.photo = photo.read_bytes() if photo is not None else None
        self.cast = cast
        self.kinds = kinds or (["page", "cast", "match"] if photo is not None else ["page", "cast"])
        self.timeout, self.verify, self.auth = timeout, verify, auth
        self.pause = pause  # between a client's requests: steady, not a flood
        self.honor_retry_after = honor_retry_after  # a polite client waits as told after 429/503
        self.expect_member = expect_member  # a match whose first member differs counts as failed
        self.answers = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sent = itertools.count()
        self._threads = []

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *_):
        self.stop()

    def start(self):
        self._deadline = time.monotonic() + self.seconds
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(self.clients)]
        for thread in self._threads:
            thread.start()

    def wait(self):
        """Until the time or the count runs out."""
        for thread in self._threads:
            thread.join()

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)

    def _request(self, session, kind):
        # verify on each request: a session's own verify=False loses to REQUESTS_CA_BUNDLE in the
        # environment (requests merges the environment over the session's setting).
        options = {"timeout": self.timeout, "verify": self.verify}
        if kind == "page":
            return session.get(self.base_url + "/", **options)
        if kind == "cast":
            return session.get(f"{self.base_url}/casts/{self.cast}" if self.cast else self.base_url + "/casts",
                               **options)
        return session.post(self.base_url + "/api/v1/match", files={"image": ("photo.jpg", self.photo)},
                            data={"cast": self.cast} if self.cast else {}, **options)

    def _client(self, number):
        session = requests.Session()
        session.verify, session.auth = self.verify, self.auth
        kinds = itertools.cycle(self.kinds[number % len(self.kinds):] + self.kinds[:number % len(self.kinds)])
        while not self._stop.is_set() and time.monotonic() < self._deadline and next(self._sent) < self.max_requests:
            kind = next(kinds)
            started = time.monotonic()
            try:
                response = self._request(session, kind)
                answer = Answer(kind, response.status_code, time.monotonic() - started,
                                retry_after=response.headers.get("Retry-After", ""),
                                body="" if response.ok else response.text[:300])
                if kind == "match" and response.ok and self.expect_member:
                    first = _first_member(response.json())
                    if first != self.expect_member:
                        answer.error, answer.body = f"wrong match: {first} first", response.text[:300]
            except requests.RequestException as error:
                answer = Answer(kind, 0, time.monotonic() - started, error=type(error).__name__)
            with self._lock:
                self.answers.append(answer)
            polite_wait = float(answer.retry_after) if self.honor_retry_after and answer.retry_after.isdigit() else 0
            self._stop.wait(max(self.pause, polite_wait))

    @property
    def failed(self):
        return [a for a in self.answers if a.failed]

    def statuses(self):
        return dict(sorted(collections.Counter(a.status for a in self.answers).items()))

    def percentile(self, fraction, status=200):
        times = sorted(a.seconds for a in self.answers if a.status == status)
        return times[min(len(times) - 1, int(fraction * len(times)))] if times else None

    def summary(self):
        return {"requests": len(self.answers), "failed": len(self.failed), "statuses": self.statuses(),
                "p50_s": self.percentile(0.5), "p99_s": self.percentile(0.99)}


def _first_member(answer):
    faces = answer.get("faces") or [{}]
    matches = faces[0].get("matches") or [{}]
    return matches[0].get("member")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--max-requests", type=int, default=5000)
    parser.add_argument("--photo", type=pathlib.Path)
    parser.add_argument("--cast")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between a client's requests")
    parser.add_argument("--expect-member", help="the member a match of the photo must give first")
    args = parser.parse_args()
    with SteadyLoad(args.url, args.clients, args.seconds, args.max_requests, args.photo, args.cast,
                    pause=args.pause, expect_member=args.expect_member) as load:
        load.wait()
    print(json.dumps(load.summary()))
    return 1 if load.failed else 0


if __name__ == "__main__":
    sys.exit(main())
