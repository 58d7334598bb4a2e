"""Prometheus on the balancer, as on call reads it: every host scraped, a stopped app host's
alert firing and shown by status.yml, bad uploads counted as 4xx and not 5xx, /metrics closed
to everyone but the monitoring host."""

import json
import time
import urllib.parse

import requests
from conftest import APP_HOSTS, BALANCER, address_of, play

testinfra_hosts = [f"ansible://{BALANCER}"]


def query(host, promql):
    """Prometheus' API on the monitoring host (it listens on loopback only)."""
    answer = host.check_output(f"curl -sf 'http://127.0.0.1:9090/api/v1/query?query={urllib.parse.quote(promql)}'")
    return {sample["metric"].get("instance", ""): float(sample["value"][1])
            for sample in json.loads(answer)["data"]["result"]}


def firing(host):
    answer = json.loads(host.check_output("curl -sf http://127.0.0.1:9090/api/v1/alerts"))
    return {(a["labels"]["alertname"], a["labels"].get("instance")) for a in answer["data"]["alerts"]
            if a["state"] == "firing"}


def wait_for(check, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(2)
    raise AssertionError(f"{what}: not within {seconds} s")


def test_prometheus_scrapes_every_host(host):
    expected = {job: set(names) for job, names in {
        "node": APP_HOSTS + [BALANCER], "nginx": APP_HOSTS + [BALANCER],
        "nginx_answers": APP_HOSTS + [BALANCER], "face_rec_app": APP_HOSTS}.items()}
    for job, names in expected.items():
        wait_for(lambda: {i for i, v in query(host, f'up{{job="{job}"}}').items() if v == 1} == names, 60,
                 f"{job} up on {names}")
    releases = query(host, "face_rec_release_info")
    assert set(releases) == set(APP_HOSTS)
    assert set(query(host, "face_rec_known_encodings")) == set(APP_HOSTS)


def test_metrics_are_closed_to_visitors(app_hosts, balancer_url):
    assert requests.get(balancer_url + "/metrics", timeout=10).status_code == 404
    for app in app_hosts.values():
        assert requests.get(f"http://{address_of(app)}/metrics", timeout=10).status_code == 403
        assert app.run("curl -sf -o /dev/null http://127.0.0.1:9100/metrics").rc == 0


def test_bad_uploads_move_4xx_counters_not_5xx(host, balancer_url):
    def counts():
        return (sum(query(host, 'sum by (instance) (face_rec_http_requests_total{status=~"4.."})').values()),
                sum(query(host, 'sum by (instance) (face_rec_http_requests_total{status=~"5.."})').values()),
                sum(query(host, 'sum by (instance) (face_rec_nginx_requests_total{status=~"5.."})').values()))
    before = counts()
    for _ in range(10):
        answer = requests.post(balancer_url + "/api/v1/match", files={"image": ("x.jpg", b"not a photo")}, timeout=10)
        assert answer.status_code == 415
        time.sleep(0.6)  # under the per-client rate limit: 415s, not 429s
    after = wait_for(lambda: (lambda c: c if c[0] >= before[0] + 10 else None)(counts()), 30, "10 more 4xx")
    assert after[1] == before[1] and after[2] == before[2], (before, after)


def test_a_stopped_app_host_fires_its_alert_and_status_shows_it(host, app_hosts):
    stopped_name = APP_HOSTS[1]
    stopped = app_hosts[stopped_name]
    services = "prometheus-node-exporter nginx main.socket main"
    with stopped.sudo():
        stopped.run_expect([0], f"systemctl stop {services}")
    try:
        wait_for(lambda: ("FaceRecHostDown", stopped_name) in firing(host), 150, "FaceRecHostDown firing")
        status = play("playbooks/status.yml")
        assert status.returncode == 0, status.stdout[-3000:]
        assert f"ALERT firing: FaceRecHostDown on {stopped_name}" in status.stdout
        assert f"{APP_HOSTS[0]}: requests per second" in status.stdout
    finally:
        with stopped.sudo():
            stopped.run_expect([0], f"systemctl start {services}")
    wait_for(lambda: ("FaceRecHostDown", stopped_name) not in firing(host), 60, "the alert resolved")
