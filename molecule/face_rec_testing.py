"""Shared by every Molecule scenario's tests: each scenario's conftest.py imports it. The project
root, the scripts the tests share with the command line (the test photos, the load client, the
request fuzz), the test photos as a fixture, and one way to run a playbook as on call does."""

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

sys.path.insert(0, str(ROOT / "scripts"))
import demo_cast  # noqa: E402
import request_fuzz  # noqa: E402,F401  (re-exported for the scenarios' tests)
import steady_load  # noqa: E402,F401


@pytest.fixture(scope="session")
def photos():
    """The face_recognition 1.3.0 sdist's test photos, fetched with pip once and cached."""
    return demo_cast.test_images()


def play(playbook, *args, inventory=None, extra_vars=None, timeout=900, env=None, drop_env=()):
    """ansible-playbook as on call runs it: the project's ansible.cfg, from the project's root, on
    the scenario's inventory (or `inventory`). `env` adds variables, `drop_env` removes those
    that start with these prefixes. The finished process, with its `seconds`."""
    command = ["ansible-playbook", "-i", str(inventory or os.environ["MOLECULE_INVENTORY_FILE"]), str(ROOT / playbook),
               *args]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    environment = {key: value for key, value in os.environ.items() if not key.startswith(tuple(drop_env))}
    # The project's ansible.cfg (Molecule points ANSIBLE_CONFIG at its own), and plain output.
    environment.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1",
                       PATH=f"{pathlib.Path(sys.executable).parent}:{environment.get('PATH', '')}", **(env or {}))
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, env=environment,
                            cwd=ROOT)
    result.seconds = round(time.monotonic() - started, 1)
    return result
