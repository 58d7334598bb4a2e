"""The Compute Engine plays cannot reach Google Cloud from here: every input check runs, and
fails with a clear message before anything talks to it; good inputs get past the checks."""

import json
import os
import subprocess
import sys

import pytest

GOOD = {"gce_project": "face-rec-test", "gce_ssh_source_ranges": ["198.51.100.0/24"]}


def run_play(repo_root, playbook, extra_vars):
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1", "GCP_AUTH_KIND": "serviceaccount",
           "GCP_SERVICE_ACCOUNT_FILE": "/nonexistent/face-rec-test.json"}
    return subprocess.run([ansible_playbook, str(repo_root / "playbooks" / playbook), "-e", json.dumps(extra_vars)],
                          capture_output=True, text=True, timeout=120, cwd=repo_root, env=env, check=False)


@pytest.mark.parametrize("bad, message", [
    ({"gce_project": None}, "gce_project must be a project id"),
    ({"gce_project": "Not_A_Project"}, "got Not_A_Project"),
    ({"gce_zone": "europe"}, "gce_zone a zone like europe-west1-b (got europe)"),
    ({"gce_vm_count": 0}, "gce_vm_count a whole number from 1 to 20 (got 0)"),
    ({"gce_vm_count": "two"}, "(got two)"),
    ({"gce_vm_count": 21}, "(got 21)"),
    ({"gce_prefix": "Face_Rec"}, "gce_prefix a lowercase name (got Face_Rec)"),
    ({"gce_draining_timeout_s": -1}, "gce_draining_timeout_s 0-3600 (got -1)"),
    ({"gce_ssh_source_ranges": []}, "gce_ssh_source_ranges must list the CIDR ranges"),
    ({"gce_ssh_source_ranges": "198.51.100.0/24"}, "gce_ssh_source_ranges must list"),
    ({"gce_ssh_source_ranges": ["everyone"]}, "gce_ssh_source_ranges must list"),
    ({"gce_ssh_source_ranges": ["0.0.0.0/0"]}, "0.0.0.0/0 is refused"),
])
def test_gce_vm_refuses_bad_input(repo_root, bad, message):
    extra = {**GOOD, **bad}
    extra = {k: v for k, v in extra.items() if v is not None}
    result = run_play(repo_root, "gce_vm.yml", extra)
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split()), result.stdout[-2000:]
    assert "gcp_compute_firewall" not in result.stdout and "Allow HTTP" not in result.stdout


def test_gce_vm_good_input_passes_the_checks(repo_root):
    result = run_play(repo_root, "gce_vm.yml", GOOD)
    # Past the checks, the first call to Google Cloud fails here (no credentials, no network).
    assert "TASK [Allow HTTP and HTTPS to the VMs]" in result.stdout, result.stdout[-2000:]
    assert result.returncode != 0


def test_gce_teardown_wants_a_confirmation(repo_root):
    result = run_play(repo_root, "gce_teardown.yml", {"gce_project": "face-rec-test"})
    assert result.returncode != 0
    assert "add -e gce_teardown_confirm=face-rec" in " ".join(result.stdout.split())
    assert "Delete the forwarding rule" not in result.stdout


@pytest.mark.parametrize("playbook", ["site.yml", "playbooks/deploy.yml", "playbooks/rollback.yml",
                                      "playbooks/status.yml", "playbooks/gce_vm.yml", "playbooks/gce_teardown.yml"])
def test_playbooks_pass_syntax_check(repo_root, playbook):
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    result = subprocess.run([ansible_playbook, "--syntax-check", "-i", "inventory/local.yml", playbook],
                            capture_output=True, text=True, timeout=120, cwd=repo_root, check=False)
    assert result.returncode == 0, result.stderr
