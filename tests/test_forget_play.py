"""playbooks/forget.yml refuses, before any host is touched, what does not name one member
and confirm it (the fleet scenario forgets one for real)."""

import json
import os
import subprocess
import sys

import pytest

GOOD = {"cast": "presidents", "member": "biden", "forget_confirm": "presidents/biden"}


def run_forget(repo_root, extra_vars, *args):
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([ansible_playbook, "-i", "inventory/local.yml", "playbooks/forget.yml", *args,
                           "-e", json.dumps(extra_vars)],
                          capture_output=True, text=True, timeout=120, cwd=repo_root, env=env, check=False)


@pytest.mark.parametrize(("bad", "message"), [
    ({"forget_confirm": None}, "add -e forget_confirm=presidents/biden"),
    ({"forget_confirm": "presidents/obama"}, "add -e forget_confirm=presidents/biden"),
    ({"member": None}, "cast and member must be slugs"),
    ({"member": "../biden"}, "got cast 'presidents' and member '../biden'"),
    ({"cast": "Presidents"}, "cast and member must be slugs"),
])
def test_forget_refuses_before_touching_a_host(repo_root, bad, message):
    extra = {k: v for k, v in {**GOOD, **bad}.items() if v is not None}
    result = run_forget(repo_root, extra)
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split()), result.stdout[-2000:]
    assert "Wait for the hosts" not in result.stdout and "face-rec-local" not in result.stdout


def test_forget_has_no_dry_run(repo_root):
    result = run_forget(repo_root, GOOD, "--check")
    assert result.returncode != 0 and "it has no --check mode" in result.stdout
