"""Failed requests under a steady load across restarts, reloads and kills, and a crowd far
above capacity shed early and clearly (the per-client limits lifted, as for visitors behind one
address)."""

import threading
import time

import pytest
import requests
from conftest import figures_of, steady_load


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
    figures_of(host)["under load (4 clients: pages, cast pages, matches)"] = results
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
    checks, finished = [], threading.Event()  # a balancer's health check meanwhile: (status, body, seconds)

    def check_health():
        while not finished.is_set():
            started = time.monotonic()
            answer = requests.get(base_url + "/healthz", timeout=10)
            checks.append((answer.status_code, answer.json().get("status"), time.monotonic() - started))
            time.sleep(0.5)
    with crowd:
        checker = threading.Thread(target=check_health)
        checker.start()
        crowd.wait()
        finished.set()
        checker.join()
    statuses = crowd.statuses()
    refused = [a for a in crowd.answers if a.status == 503]
    figures = {"clients": 100, "requests": len(crowd.answers), "statuses": statuses,
               "served p50 s": round(crowd.percentile(0.5), 2), "served p99 s": round(crowd.percentile(0.99), 2),
               "refused p99 s": round(crowd.percentile(0.99, status=503), 3)}
    figures_of(host)["overload"] = figures
    print(f"\noverload: {figures}")
    assert not {0, 502, 504} & set(statuses), statuses
    assert statuses.get(200) and refused
    assert {a.retry_after for a in refused} == {"2"}
    assert '"status": 503' in refused[0].body
    assert crowd.percentile(0.99) <= 10
    assert requests.get(base_url + "/healthz", timeout=5).status_code == 200
    # /healthz waits behind the matches at most nginx_healthz_busy_after_s (2 s), then says busy:
    # a health check never fails on a host that is only busy.
    figures["health checks: ok, busy, slowest s"] = [sum(c[1] == "ok" for c in checks),
                                                     sum(c[1] == "busy" for c in checks),
                                                     round(max(c[2] for c in checks), 2)]
    assert checks and all(status == 200 and body in ("ok", "busy") for status, body, _ in checks), checks
    assert max(seconds for _, _, seconds in checks) < 3, checks


def test_health_checks_call_a_host_whose_app_is_stuck_busy_not_down(host, base_url):
    """Every process of the app stopped (SIGSTOP, as when its workers are all deep in matches):
    /healthz waits nginx_healthz_busy_after_s (2 s) and answers 200 {"status": "busy"}, so a
    balancer's health check keeps the host; once the app runs again, {"status": "ok"}."""
    with host.sudo():
        host.run_expect([0], "systemctl kill --signal=SIGSTOP main.service")
    try:
        started = time.monotonic()
        answer = requests.get(base_url + "/healthz", timeout=10)
        seconds = time.monotonic() - started
    finally:
        with host.sudo():
            host.run_expect([0], "systemctl kill --signal=SIGCONT main.service")
    assert answer.status_code == 200 and answer.json() == {"status": "busy"}, answer.text
    assert 1.5 <= seconds < 3, seconds
    assert requests.get(base_url + "/healthz", timeout=10).json()["status"] == "ok"
