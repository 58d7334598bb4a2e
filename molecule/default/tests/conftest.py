"""Shared by the default scenario's tests: the host's address, the test photos, the load client
and a way to converge site.yml again with other variables, as on call would on a live host."""

import pathlib
import sys

import pytest

# What every scenario's tests share (molecule/face_rec_testing.py).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from face_rec_testing import ROOT, photos, play, request_fuzz, steady_load  # noqa: E402,F401


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
