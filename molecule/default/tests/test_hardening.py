"""Hardening, checked on the provisioned host as on call would: nginx variables changed live (and
a broken one refused), uploads that never touch the disk, restarts and kills under a steady load,
sandboxed services, overload shed early, TLS and basic auth from Vault.

These tests change the host's configuration with site.yml and put the defaults back at the end."""

import collections
import concurrent.futures
import re
import socket
import ssl
import time

import pytest
import requests
import urllib3
import yaml
from ansible.constants import DEFAULT_VAULT_ID_MATCH
from ansible.parsing.vault import VaultLib, VaultSecret
from conftest import ROOT, converge, request_fuzz, steady_load

VAULT = ROOT / "molecule" / "default" / "vault"
# The per-client limits lifted, as for a crowd of visitors behind one address:
# nginx_match_rate_per_s is a variable of nginx.conf, nginx_match_burst one of the site.
LIFTED = {"nginx_match_rate_per_s": 1000, "nginx_match_burst": 1000, "nginx_page_rate_per_s": 1000,
          "nginx_page_burst": 1000, "nginx_client_max_in_flight": 1000}
FIGURES = {}  # per host, printed when its module fixture ends


def _figures(host):
    return FIGURES.setdefault(host.backend.get_hostname(), {})


def _converged(result):
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def lifted(host):
    """The host with the per-client limit lifted; the role defaults again afterwards."""
    _converged(converge(host, extra_vars=LIFTED))
    yield LIFTED
    _converged(converge(host))
    print(f"\nfigures of {host.backend.get_hostname()}:", _figures(host))


def _wait_healthy(base_url, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(base_url + "/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail(f"{base_url} not healthy within {seconds} s")


def _exposure(host, unit):
    with host.sudo():
        report = host.check_output(f"systemd-analyze security --no-pager {unit}")
    return float(re.search(r"Overall exposure level for \S+: ([\d.]+)", report).group(1))


def test_services_are_sandboxed(host):
    scores = {unit: _exposure(host, unit) for unit in ("main.service", "nginx.service")}
    _figures(host)["systemd-analyze security"] = scores
    print(f"\nsystemd-analyze security: {scores}")
    assert scores["main.service"] <= 1.0 and scores["nginx.service"] <= 3.0


def test_nginx_conf_and_site_variables_change_on_a_live_host(host, base_url, lifted):
    nginx_conf = host.file("/etc/nginx/nginx.conf").content_string
    site = host.file("/etc/nginx/sites-available/face_rec").content_string
    assert "rate=1000r/s" in nginx_conf and "burst=1000 nodelay" in site

    def post(_):
        return requests.post(base_url + "/api/v1/match", files={"image": ("x.jpg", b"junk")}, timeout=30).status_code
    statuses = [post(n) for n in range(12)]
    assert set(statuses) == {415}, statuses  # 12 at once: over the default burst, no 429 now


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
    _figures(host)["files in nginx's temp folders while posting 1-9 MB"] = len(created.split())
    assert created == "" and warnings_after == warnings_before


def _under_load(base_url, photos, event, clients=4):
    """A steady load of pages, cast pages and matches; `event` happens 3 s in; 3 s after the
    app is healthy again the load stops. Returns the load with its answers."""
    with steady_load.SteadyLoad(base_url, clients=clients, seconds=120, max_requests=2000,
                                photo=photos / "obama2.jpg", cast="presidents") as load:
        time.sleep(3)
        event()
        _wait_healthy(base_url)
        time.sleep(3)
    return load


def _main_pid(host):
    return int(host.check_output("systemctl show -p MainPID --value main"))


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
    _figures(host)["request fuzz (2,000 requests, seed 18): answers by status"] = dict(sorted(statuses.items(), key=str))
    print(f"\nrequest fuzz: {dict(sorted(statuses.items(), key=str))}")
    assert not bad, bad[:20]
    assert requests.get(base_url + "/healthz", timeout=10).status_code == 200


def test_restarts_and_kills_under_load(host, base_url, photos, lifted):
    def run(command):
        def event():
            with host.sudo():
                host.run_expect([0], command)
        return event

    def kill_master():
        before = _main_pid(host)
        run(f"kill -9 {before}")()
        deadline = time.monotonic() + 60
        while _main_pid(host) in (0, before) and time.monotonic() < deadline:
            time.sleep(0.2)

    workers = len(host.process.filter(comm="uwsgi")) - 1
    events = {
        "systemctl restart main": run("systemctl restart main"),
        "systemctl reload main": run("systemctl reload main"),
        "kill -9 a uWSGI worker": run("pkill -9 -o -P $(systemctl show -p MainPID --value main) uwsgi"),
        "kill -9 the uWSGI master": kill_master,
        "systemctl reload nginx": run("systemctl reload nginx"),
        "systemctl restart nginx": run("systemctl restart nginx"),
    }
    results = {}
    for name, event in events.items():
        load = _under_load(base_url, photos, event)
        results[name] = {"requests": len(load.answers), "failed": len(load.failed),
                         "failed statuses": sorted({a.status for a in load.failed})}
    _figures(host)["under load (4 clients: pages, cast pages, matches)"] = results
    print("\nfailed requests under a steady load:")
    for name, result in results.items():
        print(f"  {name}: {result}")
    assert host.service("main").is_running and host.service("nginx").is_running
    for name in ("systemctl restart main", "systemctl reload main", "systemctl reload nginx"):
        assert results[name]["failed"] == 0, (name, results[name])
    # A kill fails at most the requests its processes were serving.
    assert results["kill -9 a uWSGI worker"]["failed"] <= 1
    assert results["kill -9 the uWSGI master"]["failed"] <= workers


def test_overload_is_shed_early_and_clearly(host, base_url, photos, lifted):
    """A crowd of 100 clients far above capacity, each waiting as Retry-After says: served within
    a bounded wait or refused at once with 503, Retry-After and JSON; never 502 or 504; healthy
    right after."""
    crowd = steady_load.SteadyLoad(base_url, clients=100, seconds=30, max_requests=3000, timeout=60,
                                   photo=photos / "obama2.jpg", cast="presidents", kinds=["match"],
                                   honor_retry_after=True)
    with crowd:
        crowd.wait()
    statuses = crowd.statuses()
    refused = [a for a in crowd.answers if a.status == 503]
    figures = {"clients": 100, "requests": len(crowd.answers), "statuses": statuses,
               "served p50 s": round(crowd.percentile(0.5), 2), "served p99 s": round(crowd.percentile(0.99), 2),
               "refused p99 s": round(crowd.percentile(0.99, status=503), 3)}
    _figures(host)["overload"] = figures
    print(f"\noverload: {figures}")
    assert not {0, 502, 504} & set(statuses), statuses
    assert statuses.get(200) and refused
    assert {a.retry_after for a in refused} == {"2"}
    assert '"status": 503' in refused[0].body
    assert crowd.percentile(0.99) <= 10
    assert requests.get(base_url + "/healthz", timeout=5).status_code == 200


def test_broken_value_leaves_the_old_configuration_serving(host, base_url, lifted):
    before = host.file("/etc/nginx/sites-available/face_rec").content_string
    result = converge(host, extra_vars={**lifted, "nginx_tls": True,
                                        "nginx_tls_certificate": "/etc/nginx/tls/missing.crt",
                                        "nginx_tls_certificate_key": "/etc/nginx/tls/missing.key"})
    output = result.stdout + result.stderr  # failures go to stderr under some callbacks
    assert result.returncode != 0
    assert "nginx refused the new configuration" in output and "missing.crt" in output
    assert host.file("/etc/nginx/sites-available/face_rec").content_string == before
    with host.sudo():
        assert host.run("nginx -t").rc == 0
        assert not host.run("ls /etc/nginx/sites-available/ | grep '~$'").stdout
    assert requests.get(base_url + "/casts", timeout=10).status_code == 200


def _vaulted(path, password_file):
    """The scenario's vaulted variables, decrypted with its test vault password."""
    vault = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password_file.read_bytes().strip()))])
    loader = type("VaultLoader", (yaml.SafeLoader,), {})
    loader.add_constructor("!vault", lambda load, node: vault.decrypt(load.construct_scalar(node)).decode())
    return yaml.load(path.read_text(), Loader=loader)  # noqa: S506 (SafeLoader plus !vault)


def test_tls_and_basic_auth_from_vault(host, address, photos, lifted):
    password_file, tls_vars = VAULT / "password.txt", VAULT / "tls_auth.yml"
    secrets = _vaulted(tls_vars, password_file)
    user, password = secrets["nginx_basic_auth_user"], secrets["nginx_basic_auth_password"]
    result = _converged(converge(host, "-v", "--vault-password-file", str(password_file), "-e", f"@{tls_vars}"))
    assert password not in result.stdout + result.stderr

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    https, http = f"https://{address}", f"http://{address}"
    served = ssl.get_server_certificate((address, 443))
    with host.sudo():
        assert served.strip() == host.file("/etc/nginx/tls/face_rec.crt").content_string.strip()

    assert requests.get(https + "/", verify=False, timeout=10).status_code == 401
    assert requests.get(https + "/", auth=(user, "wrong"), verify=False, timeout=10).status_code == 401
    home = requests.get(https + "/", auth=(user, password), verify=False, timeout=10)
    assert home.status_code == 200 and home.headers["Strict-Transport-Security"] == "max-age=31536000"
    with open(photos / "obama2.jpg", "rb") as photo:
        match = requests.post(https + "/api/v1/match", files={"image": photo}, auth=(user, password),
                              verify=False, timeout=60)
    assert match.json()["faces"][0]["matches"][0]["member"] == "obama"

    redirect = requests.get(http + "/casts?x=1", allow_redirects=False, timeout=10)
    assert redirect.status_code == 301 and redirect.headers["Location"] == f"{https}/casts?x=1"
    # Health checks speak plain HTTP and carry no credentials.
    assert requests.get(http + "/healthz", timeout=10).status_code == 200
    assert requests.get(https + "/healthz", verify=False, timeout=10).status_code == 200

    # The TLS 1.2 suites the host accepts, tried one by one from every suite this client knows:
    # Mozilla's intermediate ones for an RSA certificate, and no CBC, SHA-1 or static-RSA suite.
    assert _accepted_tls12_suites(address) == {"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                                               "ECDHE-RSA-CHACHA20-POLY1305"}
    tls13 = ssl.create_default_context()
    tls13.check_hostname, tls13.verify_mode = False, ssl.CERT_NONE
    tls13.minimum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection((address, 443), timeout=10) as raw, tls13.wrap_socket(raw) as tls:
        assert tls.version() == "TLSv1.3"


def _accepted_tls12_suites(address):
    every = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    every.set_ciphers("ALL:@SECLEVEL=0")
    names = {c["name"] for c in every.get_ciphers() if c["protocol"] != "TLSv1.3"}
    accepted = set()
    for name in sorted(names):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(f"{name}:@SECLEVEL=0")
        try:
            with socket.create_connection((address, 443), timeout=10) as raw, context.wrap_socket(raw) as tls:
                accepted.add(tls.cipher()[0])
        except (ssl.SSLError, ConnectionResetError):
            pass
    return accepted
