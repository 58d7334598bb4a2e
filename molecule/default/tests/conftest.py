"""Shared by the default scenario's tests: the host's address, the test photos, the load client,
a way to converge site.yml again with other variables, as on call would on a live host, and the
hosts with the per-client limits lifted."""

import dataclasses
import pathlib
import sys

import pytest

# What every scenario's tests share (molecule/face_rec_testing.py).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from face_rec_testing import ROOT, photos, play, request_fuzz, steady_load  # noqa: E402,F401


@dataclasses.dataclass(frozen=True)
class AppServer:
    """The WSGI server a host runs (face_rec_wsgi_server): its unit, socket and process name."""
    name: str
    unit: str
    socket: str
    comm: str


SERVERS = {"uwsgi": AppServer("uwsgi", "main", "/run/face_rec/main.sock", "uwsgi"),
           "gunicorn": AppServer("gunicorn", "gunicorn", "/run/face_rec/gunicorn.sock", "gunicorn")}


@pytest.fixture(scope="module")
def server(host):
    """This host's server, as its inventory says (molecule.yml: the Debian 13 host runs Gunicorn)."""
    return SERVERS[host.ansible.get_variables().get("face_rec_wsgi_server", "uwsgi")]


@pytest.fixture(scope="module")
def other_server(server):
    return next(other for other in SERVERS.values() if other != server)


@pytest.fixture(scope="module")
def address(host):
    return host.interface("eth0").addresses[0]


@pytest.fixture(scope="module")
def base_url(address):
    return f"http://{address}"


def converge(host, *args, tags="nginx", extra_vars=None):
    """site.yml on this host again, with --tags and extra variables; the finished process."""
    return play("site.yml", "--limit", host.backend.get_hostname(), "--tags", tags, *args, extra_vars=extra_vars,
                timeout=600)


def converged(result):
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result


# The per-client limits lifted, as for a crowd of visitors behind one address:
# nginx_match_rate_per_s is a variable of nginx.conf, nginx_match_burst one of the site.
LIFTED = {"nginx_match_rate_per_s": 1000, "nginx_match_burst": 1000, "nginx_page_rate_per_s": 1000,
          "nginx_page_burst": 1000, "nginx_client_max_in_flight": 1000,
          "nginx_client_max_matches_in_flight": 1000}
FIGURES = {}  # per host, printed when the session ends


def figures_of(host):
    return FIGURES.setdefault(host.backend.get_hostname(), {})


@pytest.fixture(scope="session")
def lifted():
    """Every host with the per-client limits lifted (one site.yml run for all), the role defaults
    again when the session ends. Only modules that sort after test_stack.py, which checks the
    default limits, ask for it, so it starts after that one."""
    converged(play("site.yml", "--tags", "nginx", extra_vars=LIFTED))
    yield LIFTED
    converged(play("site.yml", "--tags", "nginx"))
    print("\nfigures:", FIGURES)
