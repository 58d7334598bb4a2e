"""What visitors send, through nginx and uWSGI: uploads that never touch the disk, bodies on
every route, and requests our own client never sends (the request fuzz); deliberate answers
only (the per-client limits lifted, as for visitors behind one address)."""

import collections
import concurrent.futures
import time

import requests
from conftest import figures_of, request_fuzz


def test_uploads_never_touch_the_disk(host, base_url, photos, lifted):
    """Uploads of 1 to 9 MB and answers that carry the annotated photo leave no file in nginx's
    temp folders at any moment (inotify watches them while posting) and no buffering warning."""
    watch_log = "/root/nginx-temp-files.log"
    with host.sudo():
        host.run_expect([0], "DEBIAN_FRONTEND=noninteractive apt-get install -y -q inotify-tools")
        host.run("systemctl stop watch-nginx-temp; systemctl reset-failed watch-nginx-temp; rm -f " + watch_log)
        host.run_expect([0], "systemd-run --unit=watch-nginx-temp inotifywait -m -r -e create -e moved_to "
                             f"-o {watch_log} --format %w%f /var/lib/nginx")
        warnings_before = host.run("grep -c 'to a temporary file' /var/log/nginx/error.log").stdout.strip()
    time.sleep(1)  # inotifywait sets up its watches
    for megabytes in (1, 3, 5, 7, 9):
        body = bytes(range(256)) * (megabytes * 4096)
        answer = requests.post(base_url + "/api/v1/match", files={"image": ("big.jpg", body)}, timeout=60)
        assert answer.status_code == 415, (megabytes, answer.status_code)
    photo = (photos / "obama2.jpg").read_bytes()
    page = requests.post(base_url + "/match", files={"image": ("p.jpg", photo)}, data={"cast": "presidents"},
                         timeout=60)
    assert page.status_code == 200 and "data:image/jpeg;base64," in page.text and len(page.content) > 64 * 1024
    api = requests.post(base_url + "/api/v1/match", files={"image": ("p.jpg", photo)}, timeout=60)
    assert api.json()["faces"][0]["matches"][0]["member"] == "obama"
    with host.sudo():
        host.run("systemctl stop watch-nginx-temp")
        created = host.check_output(f"cat {watch_log}")
        warnings_after = host.run("grep -c 'to a temporary file' /var/log/nginx/error.log").stdout.strip()
    figures_of(host)["files in nginx's temp folders while posting 1-9 MB"] = len(created.split())
    assert created == "" and warnings_after == warnings_before


def test_a_body_gets_a_deliberate_answer_on_every_route(base_url, photos, lifted):
    """Bodies our own client never sends, six at a time (the race they lost showed up under load):
    where no route reads a body, nginx refuses it itself; the match route answers a raw body of
    a type it does not take with 415 after uWSGI has read it. Never a 502 (nginx writing to a
    socket the app had already closed)."""
    photo = (photos / "biden.jpg").read_bytes()  # 354 KB, the size that lost the race
    large = photo * 9  # 3.2 MB
    small = photo[:8000]
    requests_to_send = 15 * [
        ("PUT", "/casts", photo, "image/jpeg", 413), ("POST", "/healthz", photo, "image/jpeg", 413),
        ("POST", "/", large, "image/jpeg", 413), ("PUT", "/casts", small, "text/plain", 405),
        ("POST", "/casts/presidents", small, "application/json", 405),
        ("POST", "/api/v1/match", large, "application/octet-stream", 415),
        ("POST", "/api/v1/match?k=2", photo, "text/plain", 415),
    ]

    def send(request):
        method, path, body, kind, _ = request
        answer = requests.request(method, base_url + path, data=body, headers={"Content-Type": kind}, timeout=60)
        return answer.status_code, answer.headers.get("Content-Type", ""), answer.text

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(send, requests_to_send))
    got = collections.Counter((r[0], r[1], a[0]) for r, a in zip(requests_to_send, answers))
    expected = collections.Counter((r[0], r[1], r[4]) for r in requests_to_send)
    assert got == expected, got
    refused = next(a for r, a in zip(requests_to_send, answers) if r[1] == "/healthz")
    assert refused[1] == "application/json" and "no request body over 16 KB" in refused[2]
    unsupported = next(a for r, a in zip(requests_to_send, answers) if r[4] == 415)
    assert "multipart" in unsupported[2] and "image/jpeg" in unsupported[2]


def test_requests_we_never_send_get_deliberate_answers(base_url, photos, host, lifted):
    """2,000 seeded requests as the internet sends them (request_fuzz.py), through nginx and
    uWSGI: every answer below 500 but 503 shedding with Retry-After, and the app well after."""
    statuses, bad = request_fuzz.run(base_url, count=2000, seed=18, photo=(photos / "obama2.jpg").read_bytes())
    figures_of(host)["request fuzz (2,000 requests, seed 18): answers by status"] = dict(sorted(statuses.items(), key=str))
    print(f"\nrequest fuzz: {dict(sorted(statuses.items(), key=str))}")
    assert not bad, bad[:20]
    assert requests.get(base_url + "/healthz", timeout=10).status_code == 200
