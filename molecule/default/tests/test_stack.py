"""The full stack on a fresh host, checked from outside through nginx on port 80."""

import concurrent.futures
import os
import socket
import subprocess
import time

import requests


def test_services_enabled_and_running_as_the_right_users(host, server, other_server):
    for name in (server.unit, f"{server.unit}.socket", "nginx"):
        assert host.service(name).is_enabled and host.service(name).is_running, name
    app = host.process.filter(comm=server.comm)
    assert len(app) >= 3 and {p.user for p in app} == {"face_rec"}
    # Nothing of the other server: not running, not enabled, no unit, no process.
    assert not host.file(f"/etc/systemd/system/{other_server.unit}.service").exists
    assert not host.file(f"/etc/systemd/system/{other_server.unit}.socket").exists
    assert not host.process.filter(comm=other_server.comm)
    assert {p.user for p in host.process.filter(comm="nginx")} == {"root", "www-data"}
    assert host.user("face_rec").shell == "/usr/sbin/nologin"


def test_socket_owned_by_systemd_with_owner_and_mode(host, server):
    socket = host.file(server.socket)
    assert socket.is_socket
    assert (socket.user, socket.group, socket.mode) == ("face_rec", "www-data", 0o660)
    assert host.service(f"{server.unit}.socket").is_enabled and host.service(f"{server.unit}.socket").is_running
    assert server.socket in host.check_output(f"systemctl show {server.unit}.socket -p Listen --value")


def test_encodings_are_the_app_users_alone(host):
    """Encodings are faces of real people: 0600 in a 0750 folder on the host that built them."""
    with host.sudo():
        folder, encodings = host.file("/opt/face_rec/shared/encodings"), host.file("/opt/face_rec/shared/encodings/presidents.npz")
        assert (folder.user, folder.group, folder.mode) == ("face_rec", "face_rec", 0o750)
        assert (encodings.user, encodings.mode) == ("face_rec", 0o600)
    assert host.run("cat /opt/face_rec/shared/encodings/presidents.npz").rc != 0  # not for the login user


def test_nginx_config_is_valid_and_default_site_gone(host):
    with host.sudo():
        assert host.run("nginx -t").rc == 0
    assert host.file("/etc/nginx/sites-enabled/face_rec").linked_to == "/etc/nginx/sites-available/face_rec"
    assert not host.file("/etc/nginx/sites-enabled/default").exists


def test_home_page_through_nginx(base_url):
    response = requests.get(base_url + "/", timeout=10)
    assert response.status_code == 200 and "Who do you look like?" in response.text
    assert "nginx/" not in response.headers.get("Server", "")
    for header in ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        assert header in response.headers


def test_static_file_served_by_nginx_alone(host, base_url, server):
    marker = f"/static/style.css?probe={time.time_ns()}"
    response = requests.get(base_url + marker, timeout=10)
    assert response.status_code == 200 and "max-age=604800" in response.headers["Cache-Control"]
    with host.sudo():
        assert marker not in host.check_output(f"journalctl -u {server.unit} --no-pager -o cat")
        assert marker in host.check_output("tail -n 50 /var/log/nginx/access.log")


def test_member_photo_served_and_metadata_not(base_url, photos):
    response = requests.get(base_url + "/media/presidents/obama/obama.jpg", timeout=10)
    assert response.status_code == 200 and response.content == (photos / "obama.jpg").read_bytes()
    assert requests.get(base_url + "/media/presidents/obama/member.yml", timeout=10).status_code == 404


def test_face_thumbnail_served_by_nginx_alone(host, base_url, server):
    """create_encodings' thumbnails: small WebP files nginx serves without the app."""
    marker = f"/thumbs/presidents/obama/obama.jpg.webp?probe={time.time_ns()}"
    response = requests.get(base_url + marker, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/webp"
    assert len(response.content) < 20_000
    assert response.headers["Cache-Control"] == "private, max-age=600, must-revalidate"
    assert requests.get(base_url + "/thumbs/presidents/obama/../../../encodings/presidents.npz",
                        timeout=10).status_code in (400, 404)
    with host.sudo():
        assert marker not in host.check_output(f"journalctl -u {server.unit} --no-pager -o cat")


def test_logs_never_name_a_member(host, base_url, server):
    """A member's page is logged up to its cast, by nginx and by uWSGI or Gunicorn alike (forget.yml then
    has no access-log line to scrub)."""
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    assert requests.get(base_url + "/casts/presidents/obama", timeout=10).status_code == 200
    time.sleep(1)
    with host.sudo():
        journal = host.check_output(f"journalctl -u {server.unit} --no-pager -o cat --since '{since}'")
        access = host.check_output("tail -n 20 /var/log/nginx/access.log")
    assert "GET /casts/presidents/- 200" in journal, journal[-2000:]
    assert '"GET /casts/presidents/- HTTP/1.1" 200' in access, access
    assert "/presidents/obama" not in journal and "/presidents/obama" not in access


def test_match_api_finds_obama(base_url, photos):
    with open(photos / "obama2.jpg", "rb") as photo:
        response = requests.post(base_url + "/api/v1/match", files={"image": photo}, data={"cast": "presidents"},
                                 timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["faces"][0]["matches"][0]["member"] == "obama"


def test_upload_over_10_mb_gets_413(base_url):
    response = requests.post(base_url + "/api/v1/match", files={"image": ("big.jpg", os.urandom(11 * 1024 * 1024))},
                             timeout=60)
    assert response.status_code == 413 and "larger than 10 MB" in response.json()["error"]["message"]


def test_burst_gets_429_with_retry_after(base_url):
    def post(_):
        return requests.post(base_url + "/api/v1/match", files={"image": ("x.jpg", b"junk")}, timeout=30)
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(post, range(24)))
    statuses = [a.status_code for a in answers]
    assert 429 in statuses and 415 in statuses
    limited = next(a for a in answers if a.status_code == 429)
    assert limited.headers["Retry-After"] == "1" and limited.json()["error"]["status"] == 429
    assert "Retry-After" not in next(a for a in answers if a.status_code == 415).headers


def test_a_client_sending_uploads_slowly_holds_two_match_slots_and_no_more(host, address, base_url):
    """One client opens six match uploads of 1 MB and sends them at a trickle: nginx counts a
    match from its first byte, so each would hold one of the host's six match slots
    (nginx_match_in_flight) for as long as it trickles. Two are let in (the per-client limit),
    four get 503 at once; meanwhile another client (the host itself, from its own address)
    gets every match served. Default limits (this module runs before any test lifts them)."""
    time.sleep(3)  # the burst above has emptied this client's match bucket: 2 a second refill it
    slow = []
    try:
        for _ in range(6):
            connection = socket.create_connection((address, 80), timeout=10)
            connection.sendall(b"POST /api/v1/match?cast=presidents HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Type: image/jpeg\r\nContent-Length: 1000000\r\n\r\n\xff\xd8\xff")
            slow.append(connection)
            time.sleep(0.1)
        time.sleep(1)
        refused = []
        for connection in slow:
            connection.setblocking(False)
            try:
                refused.append(connection.recv(4096))
            except BlockingIOError:
                pass  # still sending: it holds a slot
        assert len(refused) == 4 and all(b" 503 " in answer.split(b"\r\n")[0] for answer in refused), refused
        other = host.run(f"photo=$(mktemp) && curl -sf -o $photo {base_url}/media/presidents/obama/obama.jpg && "
                         "for i in 1 2 3 4 5; do curl -s -o /dev/null -w '%{http_code} ' --data-binary @$photo "
                         f"-H 'Content-Type: image/jpeg' '{base_url}/api/v1/match?cast=presidents'; sleep 0.5; done; "
                         "rm -f $photo")
        assert other.stdout.split() == ["200"] * 5, other.stdout + other.stderr
    finally:
        for connection in slow:
            connection.close()


def test_app_comes_back_after_a_reboot_without_ansible(host, base_url, server):
    name = host.backend.get_hostname()
    subprocess.run(["docker", "restart", name], check=True, capture_output=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(base_url + "/healthz", timeout=5).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "the app did not come back within 2 minutes"
        time.sleep(2)
    assert requests.get(base_url + "/casts/presidents", timeout=10).status_code == 200
    socket = host.file(server.socket)  # made at boot by the socket unit, untouched by the service
    assert (socket.user, socket.group, socket.mode) == ("face_rec", "www-data", 0o660)


def test_workers_share_the_models(host, server):
    """Without lazy-apps (uWSGI), with preload_app (Gunicorn), the models are loaded once in the master and shared copy-on-write:
    a worker's proportional share of memory (PSS) is far below what it maps (RSS)."""
    def kb(pid, field):
        with host.sudo():
            rollup = host.check_output(f"cat /proc/{pid}/smaps_rollup")
        return next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith(field + ":"))
    processes = host.process.filter(comm=server.comm)
    master = min(processes, key=lambda p: p.pid)
    workers = [p for p in processes if p.ppid == master.pid]
    pss = [kb(p.pid, "Pss") for p in workers]
    rss = [kb(p.pid, "Rss") for p in workers]
    total = kb(master.pid, "Pss") + sum(pss)
    print(f"\n{server.name}: {len(workers)} workers, PSS per worker {sum(pss) / len(pss) / 1024:.0f} MB "
          f"(RSS {sum(rss) / len(rss) / 1024:.0f} MB), whole tree {total / 1024:.0f} MB")
    assert sum(pss) < sum(rss) / 2


def test_memory_backstop_is_sized_from_the_workers(host, server):
    """uWSGI replaces a worker a request left above reload-on-rss, Gunicorn recycles workers after
    max_requests with jitter; the whole app is throttled above every worker at 600 MB plus the
    master, and stopped a quarter above."""
    workers = len(host.process.filter(comm=server.comm)) - 1
    if server.name == "uwsgi":
        assert "reload-on-rss = 600\n" in host.file("/etc/face_rec/main.ini").content_string
    else:
        conf = host.file("/etc/face_rec/gunicorn.conf.py").content_string
        assert "max_requests = 1000\n" in conf and "max_requests_jitter = 100\n" in conf
    high = int(host.check_output(f"systemctl show {server.unit} -p MemoryHigh --value"))
    limit = int(host.check_output(f"systemctl show {server.unit} -p MemoryMax --value"))
    assert high == (workers * 600 + 256) * 2**20 and limit == (workers * 600 + 256) * 5 // 4 * 2**20, (high, limit)
