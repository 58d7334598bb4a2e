"""Shared by the default scenario's tests: the host's address, the test photos, the load client
and a way to converge site.yml again with other variables, as on call would on a live host."""

import importlib.util
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo_cast = _load_script("demo_cast")
steady_load = _load_script("steady_load")


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
