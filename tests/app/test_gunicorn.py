"""The app under a real Gunicorn, started from roles/gunicorn's own gunicorn.conf.py: what the
role's server adds around the app (the body read first, the logs without members, nginx's
match headers), over a unix socket as nginx reaches it."""

import pathlib
import socket
import subprocess
import sys
import time

import jinja2
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "roles/gunicorn/templates/gunicorn.conf.py.j2"


@pytest.fixture(scope="module")
def gunicorn(built_gallery, tmp_path_factory):
    """Gunicorn with the role's gunicorn.conf.py, two workers, on a unix socket; its log lines."""
    run = tmp_path_factory.mktemp("gunicorn")
    (run / "current").mkdir()
    (run / "gunicorn").mkdir()
    settings = run / "face_rec.toml"
    settings.write_text(f'CASTS_DIR = "{built_gallery}/casts"\nENCODINGS_DIR = "{built_gallery}/encodings"\n')
    conf = jinja2.Template(TEMPLATE.read_text()).render(
        ansible_managed="tests/app/test_gunicorn.py", gunicorn_wsgi_app="face_rec.wsgi:gunicorn_app",
        gunicorn_root=run, gunicorn_config_file=settings, gunicorn_worker_count=2, gunicorn_timeout_s=60,
        gunicorn_graceful_timeout_s=60, gunicorn_max_requests=1000, gunicorn_max_requests_jitter=100,
        gunicorn_backlog=128, gunicorn_limit_request_line=8190, gunicorn_limit_request_field_size=8190,
        gunicorn_runtime_dir=run, gunicorn_service="gunicorn")
    (run / "gunicorn.conf.py").write_text(conf)
    sock, log = run / "gunicorn.sock", run / "log"
    with log.open("w") as log_file:
        server = subprocess.Popen([str(pathlib.Path(sys.executable).parent / "gunicorn"), "--config",
                                   str(run / "gunicorn.conf.py"), "--bind", f"unix:{sock}"],
                                  stdout=log_file, stderr=subprocess.STDOUT, cwd=run)
    try:
        deadline = time.monotonic() + 60
        while not (sock.exists() and b" 200 " in http(sock, b"GET /healthz HTTP/1.0\r\n\r\n")):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield sock, log
    finally:
        server.terminate()
        server.wait(timeout=30)


def http(sock, request, body=b""):
    """One request over the unix socket as nginx sends it (HTTP/1.0, the body in full), the answer."""
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(30)
            client.connect(str(sock))
            client.sendall(request + body)
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
            return answer
    except (FileNotFoundError, ConnectionRefusedError):
        return b""


def test_a_members_page_is_logged_up_to_its_cast(gunicorn):
    sock, log = gunicorn
    answer = http(sock, b"GET /casts/presidents/biden?ref=secret HTTP/1.0\r\nHost: face-rec\r\n"
                        b"Referer: http://face-rec/casts/presidents/biden\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 200") or answer.startswith(b"HTTP/1.1 200"), answer[:200]
    time.sleep(0.5)
    text = log.read_text()
    assert "GET /casts/presidents/- 200" in text
    assert "biden" not in text and "secret" not in text


def test_an_early_answer_reads_the_whole_body_first(gunicorn):
    """A 415 decided from the headers, with 8 MB still coming: Gunicorn reads it all before it
    answers (as uWSGI's post-buffering), so nginx never writes into a closed socket (its 502)."""
    sock, _ = gunicorn
    body = b"x" * (8 * 1024 * 1024)
    answer = http(sock, b"POST /api/v1/match HTTP/1.0\r\nContent-Type: text/plain\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body), body)
    assert b" 415 " in answer.split(b"\r\n", 1)[0], answer[:300]


def test_a_match_nginx_gave_up_on_is_skipped(gunicorn, photos):
    """nginx's headers on the match route (roles/nginx): one that waited past its time is not
    worked on (499, which nginx never sends on: it has answered busy already)."""
    sock, _ = gunicorn
    photo = (photos / "obama2.jpg").read_bytes()
    head = b"POST /api/v1/match HTTP/1.0\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n" % len(photo)
    stale = head + b"X-Face-Rec-Passed-At: %.3f\r\nX-Face-Rec-Answer-Within-S: 8\r\n\r\n" % (time.time() - 9)
    assert b" 499 " in http(sock, stale, photo).split(b"\r\n", 1)[0]
    fresh = head + b"X-Face-Rec-Passed-At: %.3f\r\nX-Face-Rec-Answer-Within-S: 8\r\n\r\n" % time.time()
    answer = http(sock, fresh, photo)
    assert b" 200 " in answer.split(b"\r\n", 1)[0] and b"obama" in answer, answer[:300]


@pytest.mark.parametrize("request_line", [
    b"GET /x/../casts/presidents/biden HTTP/1.0",       # dot segments: nginx passes them on as sent
    b"GET //CASTS/Presidents/BIDEN HTTP/1.0",
    b"GET /casts/presidents/biden/\xff HTTP/1.0",       # refused by Gunicorn itself, which logs the line
])
def test_other_spellings_of_a_members_path_are_not_logged(gunicorn, request_line):
    sock, log = gunicorn
    answer = http(sock, request_line + b"\r\nHost: face-rec\r\n\r\n")
    status = int(answer.split(b" ", 2)[1]) if answer else 0
    assert 0 < status < 500, answer[:200]
    time.sleep(0.5)
    assert "biden" not in log.read_text().lower()
