"""Compute Engine rehearsed on our test hosts, last (the scenario's fleet is done with them):
gce_vm.yml makes a fleet of one app VM and the monitoring VM against Compute's v1 API replayed
here (molecule/compute_replay.py, every request checked against Google's discovery document),
the replayed VMs' addresses being the spare host's and the balancer host's. From there on all
is real: the VMs are reached over SSH with the login gce_vm.yml gave them, the app VM is
provisioned out of rotation, smoke tested, put in the instance group and waited for until
Google's health check (the replay asks its /healthz, as Google's does) sees it healthy, and it
serves. A re-run changes nothing; status.yml shows Google's view from inventory/gcp.yml; the
teardown deletes everything by the fleet's label."""

import os
import re
import sys

import pytest
import requests
from conftest import APP_ROOT, BALANCER, ROOT, address_of, host_by_name, play

sys.path.insert(0, str(ROOT / "molecule"))
import compute_replay  # noqa: E402

testinfra_hosts = [f"ansible://{BALANCER}"]

SPARE = "face-rec-fleet-c"
PROJECT = "face-rec-rehearsal"
KEY = os.environ.get("FACE_REC_TESTHOST_KEY") or "/var/cache/face_rec/testhost/ssh/id_ed25519"


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory, photos):
    folder = tmp_path_factory.mktemp("gce")
    compute_replay.throwaway_certificate(folder)
    inventory = compute_replay.rehearsal_inventory(folder, PROJECT)
    addresses = {"face-rec-1": address_of(host_by_name(SPARE)), "face-rec-monitoring": address_of(host_by_name(BALANCER))}
    extra = {"gce_vm_count": 1, "gce_ssh_source_ranges": ["198.51.100.0/24"],
             "gce_tls_certificate_file": str(folder / "fullchain.pem"),
             "gce_tls_private_key_file": str(folder / "privkey.pem"), "gce_ssh_public_key_file": f"{KEY}.pub",
             # The spare host's venv and dlib, kept by the shrink before, under the scenario's root.
             "face_rec_root": APP_ROOT,
             # New host keys each run: known for this run only.
             "ansible_ssh_common_args": f"-o UserKnownHostsFile={folder}/known_hosts"}
    with compute_replay.ComputeReplay(addresses, project=PROJECT) as replay:
        def gce_play(playbook, more=None):
            return play(playbook, "--private-key", KEY, inventory=inventory, extra_vars={**extra, **(more or {})},
                        env=replay.env, drop_env=("MOLECULE_", "ANSIBLE_"))
        yield {"replay": replay, "play": gce_play, "addresses": addresses, "first": gce_play("playbooks/gce_vm.yml")}


def recap(output, host):
    found = re.search(rf"^{re.escape(host)}\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output, re.M)
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, found.groups()))) if found else None


def test_gce_vm_yml_makes_a_serving_fleet(rehearsal, photos, figures):
    first, replay = rehearsal["first"], rehearsal["replay"]
    assert first.returncode == 0, first.stdout[-4000:]
    assert not replay.problems, "\n".join(replay.problems)
    group = f"projects/{PROJECT}/zones/europe-west1-b/instanceGroups/face-rec-group"
    assert [link.rsplit("/", 1)[1] for link in replay.group_members[group]] == ["face-rec-1"]
    backend = replay.resources[f"projects/{PROJECT}/global/backendServices/face-rec-backend"]
    assert backend["loadBalancingScheme"] == "EXTERNAL_MANAGED"
    # Put in the group only after its smoke match, and waited for until Google saw it healthy.
    said = first.stdout
    assert said.index("TASK [Smoke test each new host through its own nginx]") \
        < said.index("TASK [Wait until Google's health check sees the VMs put back healthy]")
    health_asks = [m for m, _ in replay.requests if m == "compute.backendServices.getHealth"]
    # It serves: a real match over plain HTTP, as Google's front ends reach it. From here, not
    # from Google's ranges, the headers of Google's shape are not believed: no HSTS, no redirect.
    address = rehearsal["addresses"]["face-rec-1"]
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.10, 203.0.113.10", "Host": "face-rec.test"}
    answer = requests.post(f"http://{address}/api/v1/match?cast=presidents", data=(photos / "obama.jpg").read_bytes(),
                           headers={**headers, "Content-Type": "image/jpeg"}, timeout=60)
    assert answer.status_code == 200, answer.text[:500]
    assert answer.json()["faces"][0]["matches"][0]["member"] == "obama", answer.text[:500]
    assert "Strict-Transport-Security" not in answer.headers
    figures["GCE rehearsal, first run"] = {"seconds": first.seconds, "requests to Compute": len(replay.requests),
                                           "getHealth asks until healthy": len(health_asks)}


def test_a_re_run_changes_nothing(rehearsal, figures):
    replay = rehearsal["replay"]
    before = len(replay.requests)
    again = rehearsal["play"]("playbooks/gce_vm.yml")
    assert again.returncode == 0, again.stdout[-4000:]
    asked = [method for method, _ in replay.requests[before:]]
    changing = [m for m in asked if m.rsplit(".", 1)[1] not in ("get", "list", "aggregatedList", "listInstances", "getHealth")]
    assert not changing, changing
    assert recap(again.stdout, "face-rec-monitoring")["changed"] == 0, again.stdout[-3000:]
    assert "Joining: no VM" in " ".join(again.stdout.split())
    figures["GCE rehearsal, re-run"] = {"seconds": again.seconds}


def test_status_shows_googles_view_of_each_vm(rehearsal):
    status = rehearsal["play"]("playbooks/status.yml")
    assert status.returncode == 0, status.stdout[-4000:]
    assert f"face-rec-1 {rehearsal['addresses']['face-rec-1']}: in service, Google's health check: HEALTHY" \
        in status.stdout, status.stdout[-3000:]


def test_teardown_leaves_nothing(rehearsal):
    replay = rehearsal["replay"]
    gone = rehearsal["play"]("playbooks/gce_teardown.yml", {"gce_teardown_confirm": "face-rec"})
    assert gone.returncode == 0, gone.stdout[-4000:]
    assert not replay.problems, "\n".join(replay.problems)
    assert not replay.resources, sorted(replay.resources)
    assert not replay.group_members
