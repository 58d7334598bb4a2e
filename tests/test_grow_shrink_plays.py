"""playbooks/grow.yml and shrink.yml refuse, before any host is touched, hosts that are not app
hosts of the inventory, or a change that would leave nothing to copy from or nothing serving
(the fleet scenario grows and shrinks a fleet for real)."""

import json
import os
import subprocess
import sys

import pytest

INVENTORY = {"face_rec": {"hosts": {"app-1": {"ansible_host": "192.0.2.11"}, "app-2": {"ansible_host": "192.0.2.12"}}}}


def run_play(repo_root, tmp_path, playbook, extra_vars, *args):
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps(INVENTORY))
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([ansible_playbook, "-i", str(inventory), playbook, *args, "-e", json.dumps(extra_vars)],
                          capture_output=True, text=True, timeout=120, cwd=repo_root, env=env, check=False)


@pytest.mark.parametrize(("playbook", "extra_vars", "message"), [
    ("playbooks/grow.yml", {}, "grow_hosts must name hosts of the face_rec group"),
    ("playbooks/grow.yml", {"grow_hosts": "app-3"}, "got ['app-3']"),
    ("playbooks/grow.yml", {"grow_hosts": ["app-2"], "face_rec_drained": True},
     "another app host must be serving to copy from"),
    ("playbooks/shrink.yml", {}, "shrink_hosts must name app hosts"),
    ("playbooks/shrink.yml", {"shrink_hosts": "app-9"}, "got ['app-9']"),
    ("playbooks/shrink.yml", {"shrink_hosts": "app-1, app-2"}, "leave at least one serving"),
])
def test_refuses_before_touching_a_host(repo_root, tmp_path, playbook, extra_vars, message):
    result = run_play(repo_root, tmp_path, playbook, extra_vars)
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split()), result.stdout[-2000:]
    assert "Wait for the hosts" not in result.stdout and "app-1]" not in result.stdout.split("PLAY RECAP")[0]


def test_grow_takes_the_fleets_first_hosts(repo_root, tmp_path):
    """Every app host new (Compute Engine's first run): nothing to copy from, so they are
    provisioned as site.yml does; past the checks, the play waits for them (here, in vain)."""
    result = run_play(repo_root, tmp_path, "playbooks/grow.yml", {"grow_hosts": "app-1,app-2", "face_rec_boot_timeout_s": 1})
    assert result.returncode != 0
    assert "TASK [Wait until the host answers over SSH]" in result.stdout, result.stdout[-2000:]


def test_grow_has_no_dry_run(repo_root, tmp_path):
    result = run_play(repo_root, tmp_path, "playbooks/grow.yml", {"grow_hosts": "app-2"}, "--check")
    assert result.returncode != 0 and "a dry run cannot show" in " ".join(result.stdout.split())
