"""Prometheus metrics for on call: requests by endpoint and status, match latency, faces per
photo, known encodings per cast and the serving release, at /metrics.

uWSGI forks workers, so counters and histograms live in prometheus_client's multiprocess files
(PROMETHEUS_MULTIPROC_DIR, which main.service empties at every start); without it (tests,
`flask run`) the process's own registry is used. Nothing here identifies a visitor or a photo:
labels are route templates, methods, status codes and cast slugs. nginx lets only the
monitoring hosts read /metrics.
"""

import os
import pathlib
import time

from flask import Blueprint, Response, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram,
                               generate_latest, multiprocess)
from prometheus_client.core import GaugeMetricFamily

from face_rec.gallery import current_snapshot

REQUESTS = Counter("face_rec_http_requests_total", "HTTP requests the app answered.",
                   ["endpoint", "method", "status"])
MATCH_SECONDS = Histogram("face_rec_match_duration_seconds", "Time to match one photo: decode, detect, encode, search.",
                          buckets=(0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 30, 60))
SKIPPED_MATCHES = Counter("face_rec_matches_skipped_total",
                          "Matches not worked on: nginx had answered them busy while they waited for a worker.")
DECODES_OVER_LIMIT = Counter("face_rec_decodes_over_limit_total",
                             "Uploads refused (413) because decoding them went over the decode process's CPU or "
                             "memory limit.")
FACES = Histogram("face_rec_faces_per_photo", "Faces found in a matched photo.", buckets=(0, 1, 2, 3, 5, 8, 13, 21))

bp = Blueprint("metrics", __name__)


def release_name():
    """The release folder the app runs from (/opt/face_rec/releases/<release>/lib/face_rec),
    or the package's version outside a release."""
    package = pathlib.Path(__file__).resolve().parent
    if package.parents[2].name == "releases":
        return package.parents[1].name
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("face_rec")
    except PackageNotFoundError:
        return "unknown"


class _GalleryCollector:
    """Read at scrape time from the answering worker: every worker loads the same files."""

    def collect(self):
        snapshot = current_snapshot()
        encodings = GaugeMetricFamily("face_rec_known_encodings", "Encodings the app matches against, per cast.",
                                      labels=["cast"])
        for cast, count in sorted(snapshot.index.counts_by_cast().items()):
            encodings.add_metric([cast], count)
        yield encodings
        info = GaugeMetricFamily("face_rec_release_info", "The serving release (always 1).", labels=["release"])
        info.add_metric([release_name()], 1)
        yield info


class _ProcessCollector:
    def collect(self):
        yield from REGISTRY.collect()


def observe_match(seconds, faces):
    MATCH_SECONDS.observe(seconds)
    FACES.observe(faces)


def observe_decode_over_limit():
    DECODES_OVER_LIMIT.inc()


def observe_skipped_match():
    SKIPPED_MATCHES.inc()


def init_app(app):
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _count(response):
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        return response


@bp.get("/metrics")
def metrics():
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessCollector())
    registry.register(_GalleryCollector())
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
