#!/usr/bin/env python3
"""Serving throughput through nginx and each WSGI server (uWSGI, Gunicorn) against the compute
limit, side by side on the same host, measured in one run.

    bench_serving.py [--url http://127.0.0.1:8080] [--host face-rec-local] [--seconds 20]
                     [--servers uwsgi gunicorn]

Run it against the local test host from `make up` (only 127.0.0.1 or a test host this project
started). For each server in turn it runs site.yml with face_rec_wsgi_server set to it and the
per-client limits lifted with the nginx role's own variables (`-e nginx_match_rate_per_s=1000
...`); at the end, site.yml again as the inventory has it.

1. Compute limit: the app's match path (decode, detect, encode, search) on obama2.jpg in one
   plain process on this machine, matches per second per core, times the host's cores.
2. Through nginx: 1, 2, 4 and 8 concurrent clients posting obama2.jpg to /api/v1/match for
   --seconds each: requests per second, p50 and p99; efficiency = req/s / limit.
3. Baseline, same photo, same run: face_recognition's web_service_example.py way (Flask's
   development server, the photo decoded and searched at full size on each request), at the
   same client counts, as a ratio.
4. Memory: RSS of every process of the server, sampled every 5 s under 4 clients for
   --memory-seconds.
5. Events: failed requests of a steady load (4 clients: pages, cast pages, matches) across
   `systemctl restart` and `systemctl reload` of the server's unit.
Steps 2, 4 and 5 run for each server. Prints JSON, and the lines BENCHMARKS.md's tables take.
"""

import argparse
import io
import json
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import demo_cast  # noqa: E402
import steady_load  # noqa: E402

# The per-client rate limit and the host's admission limit (3 matches in flight per worker,
# then 503 at once): the benchmark wants every client served, queued behind the workers.
LIFTED = {"nginx_match_rate_per_s": 1000, "nginx_match_burst": 1000, "nginx_match_max_in_flight": 1000,
          "nginx_client_max_in_flight": 1000, "nginx_client_max_matches_in_flight": 1000,
          "nginx_page_rate_per_s": 1000, "nginx_page_burst": 1000}
# Each server's unit and the name of its processes.
SERVERS = {"uwsgi": {"unit": "main", "comm": "uwsgi"}, "gunicorn": {"unit": "gunicorn", "comm": "gunicorn"}}


def compute_limit(photo, cores, seconds=15):
    """Matches per second of the app's own match path in this one process, times cores."""
    from face_rec import create_app

    casts = ROOT / ".cache" / "bench-serving"
    demo_cast.build_demo_cast(casts / "casts")
    from face_rec.create_encodings import main as create_encodings
    create_encodings(["--casts-dir", str(casts / "casts"), "--encodings-dir", str(casts / "encodings"), "--quiet"])
    app = create_app({"CASTS_DIR": casts / "casts", "ENCODINGS_DIR": casts / "encodings"})
    client = app.test_client()
    data = photo.read_bytes()
    client.post("/api/v1/match", data={"image": (io.BytesIO(data), "p.jpg")})  # warm
    done, started = 0, time.process_time()
    wall = time.monotonic()
    while time.monotonic() - wall < seconds:
        assert client.post("/api/v1/match", data={"image": (io.BytesIO(data), "p.jpg")}).status_code == 200
        done += 1
    per_match = (time.process_time() - started) / done
    return {"cpu_ms_per_match": round(per_match * 1000, 1), "per_core": round(1 / per_match, 2),
            "limit": round(cores / per_match, 2)}


def load(url, photo, clients, seconds):
    """`clients` posting the photo back to back for `seconds` (scripts/steady_load.py, no pause)."""
    started = time.monotonic()
    with steady_load.SteadyLoad(url, clients=clients, seconds=seconds, max_requests=10**6, photo=photo,
                                kinds=["match"], timeout=120, pause=0) as run:
        run.wait()
    elapsed = time.monotonic() - started
    served = run.statuses().get(200, 0)
    p50, p99 = run.percentile(0.5), run.percentile(0.99)
    return {"clients": clients, "rps": round(served / elapsed, 2), "failed": len(run.failed),
            "p50_s": p50 and round(p50, 3), "p99_s": p99 and round(p99, 3)}


EXAMPLE_SERVER = """
import sys, face_recognition
from flask import Flask, jsonify, request
known = face_recognition.face_encodings(face_recognition.load_image_file(sys.argv[1]))[0]
app = Flask(__name__)
@app.post("/api/v1/match")
def match():  # as face_recognition's examples/web_service_example.py: full size, per request
    image = face_recognition.load_image_file(request.files["image"])
    encodings = face_recognition.face_encodings(image)
    return jsonify(faces=[bool(face_recognition.compare_faces([known], e)[0]) for e in encodings])
app.run(host="127.0.0.1", port=int(sys.argv[2]), threaded=True)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def example_baseline(photo, known, counts, seconds):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", EXAMPLE_SERVER, str(known), str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.5)
        return [load(f"http://127.0.0.1:{port}", photo, clients, seconds) for clients in counts]
    finally:
        server.terminate()
        server.wait()


def server_rss(host, comm):
    out = subprocess.run(["docker", "exec", host, "ps", "-C", comm, "-o", "pid=,rss="],
                         capture_output=True, text=True, check=True).stdout
    return {int(pid): int(rss) // 1024 for pid, rss in (line.split() for line in out.splitlines())}


def memory_under_load(url, host, comm, photo, seconds):
    samples = []
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            samples.append(server_rss(host, comm))
            stop.wait(5)
    thread = threading.Thread(target=sampler)
    thread.start()
    result = load(url, photo, 4, seconds)
    stop.set()
    thread.join()
    # Workers are recycled after max-requests: report by role, over every sample.
    master = min(set().union(*samples))
    workers = [rss for sample in samples for pid, rss in sample.items() if pid != master]
    return {"load": result, "samples": len(samples), "worker_pids_seen": len(set().union(*samples)) - 1,
            "master_mb_first_last": [samples[0].get(master), samples[-1].get(master)],
            "worker_mb_first_sample": sorted(v for p, v in samples[0].items() if p != master),
            "worker_mb_last_sample": sorted(v for p, v in samples[-1].items() if p != master),
            "worker_mb_min_max": [min(workers), max(workers)]}


def events_under_load(url, host, unit, photo):
    """Failed requests of a steady load across a restart and a reload of the server's unit."""
    results = {}
    for action in ("restart", "reload"):
        with steady_load.SteadyLoad(url, clients=4, seconds=120, max_requests=5000, photo=photo,
                                    cast="presidents") as run:
            time.sleep(3)
            subprocess.run(["docker", "exec", host, "systemctl", action, unit], check=True)
            time.sleep(8)
        results[action] = {"requests": len(run.answers), "failed": len(run.failed)}
    return results


def site(inventory, extra, tags=()):
    command = ["ansible-playbook", "-i", str(ROOT / inventory), str(ROOT / "site.yml")]
    if tags:
        command += ["--tags", ",".join(tags)]
    if extra:
        command += ["-e", json.dumps(extra)]
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PATH": f"{ROOT / '.venv/bin'}:{os.environ['PATH']}"})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--host", default="face-rec-local")
    parser.add_argument("--inventory", default="inventory/local.yml")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--memory-seconds", type=float, default=90)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--servers", nargs="+", choices=sorted(SERVERS), default=["uwsgi", "gunicorn"])
    options = parser.parse_args()
    photos = demo_cast.test_images()
    photo = photos / "obama2.jpg"
    cores = int(subprocess.run(["docker", "exec", options.host, "nproc"], capture_output=True, text=True,
                               check=True).stdout)
    limit = compute_limit(photo, cores)
    example = example_baseline(photo, photos / "obama.jpg", options.clients, options.seconds)
    servers = {}
    try:
        for name in options.servers:
            unit, comm = SERVERS[name]["unit"], SERVERS[name]["comm"]
            site(options.inventory, {**LIFTED, "face_rec_wsgi_server": name})
            load(options.url, photo, 2, 3)  # warm every worker
            served = [load(options.url, photo, clients, options.seconds) for clients in options.clients]
            for row, base in zip(served, example):
                row["efficiency"] = round(row["rps"] / limit["limit"], 2)
                row["vs_web_service_example"] = round(row["rps"] / base["rps"], 2) if base["rps"] else None
            servers[name] = {"through_nginx": served,
                             "memory": memory_under_load(options.url, options.host, comm, photo, options.memory_seconds),
                             "events": events_under_load(options.url, options.host, unit, photo)}
    finally:
        site(options.inventory, {})  # the inventory's own server and limits
    report = {"machine": f"{os.cpu_count()} cores here, {cores} on the host", "compute_limit": limit,
              "servers": servers, "web_service_example": example}
    print(json.dumps(report, indent=1))
    print(f"compute limit: {limit['limit']} matches/s ({limit['cpu_ms_per_match']} ms of CPU per match, {cores} cores)")
    for name, result in servers.items():
        memory = result["memory"]
        print(f"{name}: memory {json.dumps({k: v for k, v in memory.items() if k != 'load'})}")
        print(f"{name}: events {json.dumps(result['events'])}")
        for row, base in zip(result["through_nginx"], example):
            print(f"| {name} | {row['clients']} | {row['rps']} | {row['failed']} | {row['p50_s']} s | {row['p99_s']} s | "
                  f"{row['efficiency']} | {base['rps']} ({row['vs_web_service_example']}x) |")


if __name__ == "__main__":
    main()
