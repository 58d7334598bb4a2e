"""Switching the WSGI server is a re-run of site.yml (face_rec_wsgi_server), under a steady load
through nginx: the new server starts on its own socket, nginx passes requests to it, and only
then the old one stops; not one request fails, and nothing of the old server is left running,
enabled or written. On the uWSGI host: to Gunicorn and back."""

import time

from conftest import SERVERS, figures_of, play, steady_load

testinfra_hosts = ["ansible://face-rec-default"]


def _switch(host, base_url, photos, lifted, to):
    with steady_load.SteadyLoad(base_url, clients=4, seconds=240, max_requests=20000,
                                photo=photos / "obama2.jpg", cast="presidents") as load:
        time.sleep(2)
        result = play("site.yml", "--limit", host.backend.get_hostname(), extra_vars={**lifted, "face_rec_wsgi_server": to})
        time.sleep(2)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return {"requests": len(load.answers), "failed": len(load.failed), "site.yml s": result.seconds}


def _serves_with(host, server):
    other = next(other for other in SERVERS.values() if other != server)
    with host.sudo():
        assert host.service(server.unit).is_running and host.service(f"{server.unit}.socket").is_enabled
        for unit in (other.unit, f"{other.unit}.socket"):
            assert host.run(f"systemctl is-active {unit}").stdout.strip() != "active", unit
            assert host.run(f"systemctl is-enabled {unit}").rc != 0, unit
        assert not host.file(f"/etc/systemd/system/{other.unit}.service").exists
        assert not host.file(other.socket).exists
        assert not host.process.filter(comm=other.comm)
        site = host.file("/etc/nginx/sites-available/face_rec").content_string
    assert ("uwsgi_pass" in site) == (server.name == "uwsgi") and ("proxy_pass" in site) == (server.name == "gunicorn")


def test_switching_the_server_fails_no_request(host, base_url, photos, lifted, server):
    assert server.name == "uwsgi"
    results = {}
    for to in ("gunicorn", "uwsgi"):
        results[f"to {to}"] = _switch(host, base_url, photos, lifted, to)
        _serves_with(host, SERVERS[to])
    figures_of(host)["switching the server under a steady load"] = results
    print(f"\nswitching the server under a steady load: {results}")
    for name, result in results.items():
        assert result["failed"] == 0 and result["requests"] > 100, (name, result)
