"""Shared by the default scenario's tests: the host's address, the test photos, the load client
and a way to converge site.yml again with other variables, as on call would on a live host."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


# The scripts the tests share with the command line: the test photos, the load client.
sys.path.insert(0, str(ROOT / "scripts"))
import demo_cast  # noqa: E402
import request_fuzz  # noqa: E402
import steady_load  # noqa: E402


@pytest.fixture(scope="module")
def address(host):
    return host.interface("eth0").addresses[0]


@pytest.fixture(scope="module")
def base_url(address):
    return f"http://{address}"


@pytest.fixture(scope="session")
def photos():
    return demo_cast.test_images()


def converge(host, *args, tags="nginx", extra_vars=None):
    """site.yml on this host again, with --tags and extra variables; the finished process."""
    command = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(ROOT / "site.yml"),
               "--limit", host.backend.get_hostname(), "--tags", tags, *args]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, env=env)
