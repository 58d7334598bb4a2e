"""Shared by the fleet scenario's tests: the hosts, the balancer's address, the test photos, a
steady load through the balancer, ansible-playbook runs and copies of the app to deploy."""

import json
import os
import pathlib
import re
import shutil
import sys
import time
import urllib.parse

import pytest
import testinfra
import yaml

# What every scenario's tests share (molecule/face_rec_testing.py).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from face_rec_testing import ROOT, photos, play, steady_load  # noqa: E402,F401

INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
APP_HOSTS = ["face-rec-fleet-a", "face-rec-fleet-b"]
BALANCER = "face-rec-fleet-lb"
# The fleet runs under a root of its own (molecule.yml), so every play must follow face_rec_root.
SCENARIO = yaml.safe_load((pathlib.Path(__file__).resolve().parents[1] / "molecule.yml").read_text())
APP_ROOT = SCENARIO["provisioner"]["inventory"]["group_vars"]["all"]["face_rec_root"]
# Each app host's unit: face-rec-fleet-b runs the app under Gunicorn, the others under uWSGI (main).
APP_UNITS = {name: "gunicorn" if host_vars.get("face_rec_wsgi_server") == "gunicorn" else "main"
             for name, host_vars in SCENARIO["provisioner"]["inventory"]["host_vars"].items()}


def host_by_name(name):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


@pytest.fixture(scope="session")
def app_hosts():
    return {name: host_by_name(name) for name in APP_HOSTS}


@pytest.fixture(scope="session")
def balancer():
    return host_by_name(BALANCER)


def address_of(host):
    return host.interface("eth0").addresses[0]


@pytest.fixture(scope="session")
def balancer_url(balancer):
    return f"http://{address_of(balancer)}"


@pytest.fixture(scope="session")
def figures():
    """Figures the tests measure, printed at the end for BENCHMARKS.md."""
    collected = {}
    yield collected
    print("\nfleet figures: " + json.dumps(collected, indent=1))


def host_times(output):
    """{host: seconds} from roll_host.yml's closing line per host."""
    return {host: float(seconds) for host, seconds in re.findall(r"(face-rec-fleet-\w+) (?:deployed|rolled back) in ([\d.]+) s", output)}


def serving_release(host):
    return host.check_output(f"basename $(readlink -f {APP_ROOT}/current)")


def demo_cast_dir():
    """The demo casts site.yml syncs (roles/faceapp builds them on the controller)."""
    return pathlib.Path(os.environ.get("FACE_REC_CACHE") or "/var/cache/face_rec") / "demo-casts"


def app_copy(tmp_path, name, change):
    """A copy of app/ with `change(path)` applied: a release with its own name."""
    copy = tmp_path / name
    shutil.copytree(ROOT / "app", copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    change(copy / "face_rec")
    return copy


def steady(balancer_url, photos, seconds=600):
    """The load the deploy tests run through the balancer: two clients of pages, cast pages and
    matches of obama2.jpg, which must give obama first, under the per-client rate limit."""
    return steady_load.SteadyLoad(balancer_url, clients=2, seconds=seconds, max_requests=6000,
                                  photo=photos / "obama2.jpg", cast="presidents", pause=0.3,
                                  expect_member="obama")


def load_figures(load):
    return {"requests": len(load.answers), "failed": len(load.failed), "statuses": load.statuses()}


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
