"""Two app hosts behind an nginx balancer, as on call deploys them: rolling deploys, a failed
deploy, a release that cannot match and a rollback, each under a steady load through the
balancer, with every failed request counted. The tests run in this order."""

import concurrent.futures
import re
import shutil
import time

import pytest
import requests
from conftest import (APP_HOSTS, APP_ROOT, BALANCER, address_of, app_copy, demo_cast_dir, host_times, load_figures, play,
                      serving_release, steady)

# The scenario's tests run once, from the balancer's point of view; they reach the app hosts
# themselves.
testinfra_hosts = [f"ansible://{BALANCER}"]


def test_check_mode_on_the_balancer_is_safe_and_changes_nothing():
    """site.yml --check --diff where only the fleet runs them: nginx in balancer mode, the
    exporters and Prometheus on the balancer (the default scenario checks an app host's roles)."""
    result = play("site.yml", "--check", "--diff", "--limit", BALANCER)
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(rf"{BALANCER}\s*:\s*ok=\d+\s+changed=0\s", result.stdout), result.stdout[-3000:]


def test_balancer_spreads_requests_and_keeps_the_client_address(host, app_hosts, balancer_url):
    client = host.check_output("ip route | awk '/default/ {print $3}'")  # the controller, seen from here
    logged = {}
    for name, app in app_hosts.items():
        with app.sudo():
            app.run_expect([0], "truncate -s 0 /var/log/nginx/access.log")
    for _ in range(20):
        assert requests.get(balancer_url + "/casts", timeout=10).status_code == 200
    # Straight to an app host with a forged header: not a trusted balancer, so not believed.
    direct = requests.get(f"http://{address_of(app_hosts[APP_HOSTS[0]])}/casts",
                          headers={"X-Real-IP": "203.0.113.9", "X-Forwarded-For": "203.0.113.9"}, timeout=10)
    assert direct.status_code == 200
    for name, app in app_hosts.items():
        with app.sudo():
            # Prometheus on the balancer scrapes /metrics from its own address: not a client.
            lines = [line for line in app.check_output("cat /var/log/nginx/access.log").splitlines()
                     if '"GET /metrics ' not in line]
        logged[name] = {line.split()[0] for line in lines}
        assert lines, f"{name} got no request: the balancer does not spread them"
    assert set().union(*logged.values()) == {client}, logged
    headers = requests.get(balancer_url + "/", timeout=10).headers
    assert headers["X-Frame-Options"] == "DENY" and "," not in headers["Content-Security-Policy"].split("'none'")[-1]


def test_the_edge_limits_each_client_and_keeps_uploads_off_its_disk(host, balancer_url, photos, figures):
    photo = (photos / "obama2.jpg").read_bytes()
    junk = bytes(range(256)) * (5 * 4096)  # 5 MB that is no image: 415 from the app, through the edge
    assert requests.post(balancer_url + "/api/v1/match", files={"image": ("j.jpg", junk)}, timeout=60).status_code == 415
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(lambda _: requests.post(balancer_url + "/api/v1/match",
                                                         files={"image": ("p.jpg", photo)}, timeout=60), range(12)))
    codes = [answer.status_code for answer in statuses]
    refused = [answer for answer in statuses if answer.status_code == 429]
    figures["12 matches at once from one client through the edge"] = {str(c): codes.count(c) for c in sorted(set(codes))}
    assert 200 in codes and refused, codes
    assert refused[0].headers["Retry-After"] == "1" and refused[0].json()["error"]["status"] == 429
    with host.sudo():
        assert host.check_output("find /var/lib/nginx -type f | wc -l") == "0"
    time.sleep(3)  # the client's bucket refills before the steady loads


def test_casts_sync_adds_and_removes_photos_and_encodes_once(app_hosts, photos, tmp_path, figures):
    """A photo added on the controller reaches every host and is encoded once (on the first
    host; the others get a copy, so every host has the same encodings file); removed there, it
    goes from every host with its encoding."""
    casts = tmp_path / "casts"
    shutil.copytree(demo_cast_dir(), casts)
    added = casts / "presidents" / "obama" / "obama-added.jpg"
    shutil.copy(photos / "obama2.jpg", added)
    on_host = f"{APP_ROOT}/shared/casts/presidents/obama/{added.name}"
    try:
        grown = play("site.yml", "--tags", "casts", extra_vars={"faceapp_casts_src": str(casts)})
        assert grown.returncode == 0, grown.stdout[-3000:]
        encoded = grown.stdout.split("Build the casts' encodings")[1].split("TASK")[0]
        assert re.findall(r"changed: \[(face-rec-fleet-\w)\]", encoded) == [APP_HOSTS[0]], encoded
        for app in app_hosts.values():
            with app.sudo():
                assert app.file(on_host).exists
        assert len(set(_encodings_digests(app_hosts))) == 1
        assert _encodings_count(app_hosts[APP_HOSTS[1]]) == 3
    finally:
        shrunk = play("site.yml", "--tags", "casts")  # the demo cast as it was
    assert shrunk.returncode == 0, shrunk.stdout[-3000:]
    for app in app_hosts.values():
        with app.sudo():
            assert not app.file(on_host).exists
    assert len(set(_encodings_digests(app_hosts))) == 1
    assert _encodings_count(app_hosts[APP_HOSTS[1]]) == 2
    figures["casts: add a photo, then remove it (s)"] = [grown.seconds, shrunk.seconds]


def _encodings_digests(app_hosts):
    digests = []
    for app in app_hosts.values():
        with app.sudo():
            digests.append(app.check_output(f"sha256sum {APP_ROOT}/shared/encodings/presidents.npz").split()[0])
    return digests


def _encodings_count(app):
    with app.sudo():
        return int(app.check_output(
            f"{APP_ROOT}/venv/bin/python -c \"import numpy; "
            f"print(len(numpy.load('{APP_ROOT}/shared/encodings/presidents.npz')['members']))\""))


def test_rolling_deploy_loses_nothing(app_hosts, balancer_url, photos, tmp_path, figures):
    before = {name: serving_release(app) for name, app in app_hosts.items()}
    changed = app_copy(tmp_path, "app", lambda src: (src / "templates/base.html").write_text(
        (src / "templates/base.html").read_text() + "\n{# rolling deploy test #}\n"))
    with steady(balancer_url, photos) as load:
        result = play("playbooks/deploy.yml", extra_vars={"faceapp_src": str(changed)})
    figures["rolling deploy"] = {"seconds": result.seconds, "per host s": host_times(result.stdout), **load_figures(load)}
    assert result.returncode == 0, result.stdout[-3000:]
    after = {name: serving_release(app) for name, app in app_hosts.items()}
    assert len(set(after.values())) == 1 and set(after.values()) != set(before.values()), (before, after)
    assert load.failed == [], load.failed[:5]


def _fails_to_import(src):
    (src / "main.py").write_text("import face_rec_missing_module  # noqa\n" + (src / "main.py").read_text())


def _reverses_matches(src):
    matching = src / "matching.py"
    text = matching.read_text()
    assert "snapshot.index.search(encoding, k, cast)" in text
    matching.write_text(text.replace("snapshot.index.search(encoding, k, cast)",
                                     "reversed(list(snapshot.index.search(encoding, k, cast)))"))


@pytest.mark.parametrize(("change", "reasons"), [
    pytest.param(_fails_to_import, ["Check that the release imports", "face_rec_missing_module"],
                 id="release that fails to import"),
    pytest.param(_reverses_matches, ["smoke match failed"], id="release that cannot match"),
])
def test_a_bad_release_stops_at_the_first_host_and_never_serves(app_hosts, balancer_url, photos, tmp_path, figures,
                                                                 request, change, reasons):
    before = {name: serving_release(app) for name, app in app_hosts.items()}
    bad = app_copy(tmp_path, "app", change)
    with steady(balancer_url, photos) as load:
        result = play("playbooks/deploy.yml", extra_vars={"faceapp_src": str(bad)})
    figures[f"deploy of a {request.node.callspec.id}"] = {"seconds": result.seconds, **load_figures(load)}
    out = " ".join(result.stdout.split())  # long messages may be wrapped
    assert result.returncode != 0
    assert f"deploy failed on {APP_HOSTS[0]}" in out and all(reason in out for reason in reasons), out[-3000:]
    assert {name: serving_release(app) for name, app in app_hosts.items()} == before
    # Every match through the balancer gave obama first: the bad release never served.
    assert load.failed == [], load.failed[:5]


def test_rollback_loses_nothing(app_hosts, balancer_url, photos, figures):
    before = {name: serving_release(app) for name, app in app_hosts.items()}
    with steady(balancer_url, photos) as load:
        result = play("playbooks/rollback.yml")
    figures["rollback"] = {"seconds": result.seconds, "per host s": host_times(result.stdout), **load_figures(load)}
    assert result.returncode == 0, result.stdout[-3000:]
    after = {name: serving_release(app) for name, app in app_hosts.items()}
    assert len(set(after.values())) == 1 and after != before
    assert load.failed == [], load.failed[:5]


def test_status_shows_every_host_and_the_balancers_view(app_hosts):
    result = play("playbooks/status.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    for name, app in app_hosts.items():
        assert name in result.stdout and serving_release(app) in result.stdout
    view = result.stdout.split("balancer view")[-1]
    assert view.count("in service, /healthz 200") == len(APP_HOSTS), view
