"""The GCE plays rehearsed against Compute's v1 API replayed here (molecule/compute_replay.py):
the google.cloud modules' own requests, each checked against Google's discovery document;
the instances they make, read back by inventory/gcp.yml's compose and groups and by gce_vm.yml's
own inventory step, to the same host vars; a re-run that creates nothing; a teardown that
finds everything by the fleet's label. No test host here: the VMs' addresses answer nothing,
so the run stops at its first SSH (the `fleet` scenario rehearses it on test hosts, to serving)."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "molecule"))
import compute_replay  # noqa: E402

PROJECT = "face-rec-rehearsal"
GROUP = f"projects/{PROJECT}/zones/europe-west1-b/instanceGroups/face-rec-group"
INSTANCES = f"projects/{PROJECT}/zones/europe-west1-b/instances/"
# Addresses where nothing answers SSH: the run must stop at its first connection.
ADDRESSES = {"face-rec-1": "127.0.0.21", "face-rec-2": "127.0.0.22", "face-rec-3": "127.0.0.23",
             "face-rec-monitoring": "127.0.0.24"}
# The vars gce_vm.yml's inventory step and inventory/gcp.yml both give each VM.
COMPARED = ["ansible_host", "ansible_user", "ansible_ssh_extra_args", "face_rec_private_address", "face_rec_drained",
            "gce_project", "gce_zone", "gce_prefix", "gce_instance_group", "gce_backend_service",
            "face_rec_extra_trusted_proxies", "nginx_real_ip_header", "nginx_edge_tls"]


def plain(value):
    """ansible-inventory's JSON with its marks of untrusted text ({"__ansible_unsafe": ...}) taken off."""
    if isinstance(value, dict):
        return plain(value["__ansible_unsafe"]) if set(value) == {"__ansible_unsafe"} else \
            {key: plain(item) for key, item in value.items()}
    return [plain(item) for item in value] if isinstance(value, list) else value


def ansible(tool, *args, env):
    command = [os.path.join(os.path.dirname(sys.executable), tool), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT, check=False,
                          env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", **env})


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    """gce_vm.yml run against the replay twice (2 VMs, then 3), as on call runs it."""
    folder = tmp_path_factory.mktemp("gce")
    compute_replay.throwaway_certificate(folder)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "id_ed25519")], check=True)
    inventory = compute_replay.rehearsal_inventory(folder, PROJECT)
    extra = {"gce_ssh_source_ranges": ["198.51.100.0/24"], "gce_tls_certificate_file": str(folder / "fullchain.pem"),
             "gce_tls_private_key_file": str(folder / "privkey.pem"),
             "gce_ssh_public_key_file": str(folder / "id_ed25519.pub"), "face_rec_boot_timeout_s": 1}
    with compute_replay.ComputeReplay(ADDRESSES, project=PROJECT) as replay:
        runs = []
        for count in (2, 3):
            if count == 3:
                # As if the first run had gone on: face-rec-1 joined and serves, on call keeps
                # face-rec-2 out (gcloud compute instances add-labels ... face-rec-drained=true).
                replay.group_members[GROUP] = [compute_replay.BASE + INSTANCES + "face-rec-1"]
                replay.resources[INSTANCES + "face-rec-2"]["labels"]["face-rec-drained"] = "true"
            before = len(replay.requests)
            result = ansible("ansible-playbook", "-i", str(inventory), "playbooks/gce_vm.yml",
                             "-e", json.dumps({**extra, "gce_vm_count": count}), env=replay.env)
            runs.append((result, replay.requests[before:]))
        listed = ansible("ansible-inventory", "-i", str(inventory), "--list", env=replay.env)
        instances = [r for key, r in replay.resources.items() if "/instances/" in key]
        yield {"replay": replay, "runs": runs, "listed": listed, "instances": instances, "inventory": inventory,
               "folder": folder}


def test_every_request_is_one_google_knows_with_a_body_it_takes(rehearsal):
    replay = rehearsal["replay"]
    assert not replay.problems, "\n".join(replay.problems)
    methods = {method for method, _ in replay.requests}
    # What a first run must ask for: the network, the VMs, the load balancer, all of it.
    for method in ["compute.networks.insert", "compute.subnetworks.insert", "compute.firewalls.insert",
                   "compute.disks.insert", "compute.instances.insert", "compute.instanceGroups.insert",
                   "compute.healthChecks.insert", "compute.backendServices.insert", "compute.urlMaps.insert",
                   "compute.sslCertificates.insert", "compute.targetHttpsProxies.insert",
                   "compute.globalForwardingRules.insert", "compute.instanceGroups.listInstances",
                   "compute.instances.aggregatedList"]:
        assert method in methods, sorted(methods)


def test_the_first_run_makes_the_fleet_on_its_own_network_and_stops_at_ssh(rehearsal):
    result, _ = rehearsal["runs"][0]
    said = " ".join(result.stdout.split())
    assert result.returncode != 0
    # Stopped where a VM is first reached, by the login it was given.
    assert "TASK [Wait until the host answers over SSH]" in result.stdout, said[-3000:]
    assert "Joining: face-rec-1, face-rec-2" in said, said[-3000:]
    resources = rehearsal["replay"].resources
    network = f"projects/{PROJECT}/global/networks/face-rec-net"
    assert network in resources
    rules = [r for key, r in resources.items() if "/firewalls/" in key]
    assert rules and all(rule["network"] == compute_replay.BASE + network for rule in rules)
    backend = resources[f"projects/{PROJECT}/global/backendServices/face-rec-backend"]
    assert backend["loadBalancingScheme"] == "EXTERNAL_MANAGED"
    ssh = next(rule for rule in rules if rule["name"] == "face-rec-allow-ssh")
    assert ssh["sourceRanges"] == ["198.51.100.0/24"]
    for instance in rehearsal["instances"]:
        assert instance["networkInterfaces"][0]["network"] == compute_replay.BASE + network
        metadata = {item["key"]: item["value"] for item in instance["metadata"]["items"]}
        assert metadata["face-rec-login"] == "ops" and metadata["enable-oslogin"] == "FALSE"
        assert metadata["ssh-keys"].startswith("ops:ssh-ed25519 ")
    # No VM was put in the load balancer: none was provisioned and smoke tested.
    first_requests = rehearsal["runs"][0][1]
    assert "compute.instanceGroups.addInstances" not in {method for method, _ in first_requests}


def test_a_re_run_adds_the_vms_asked_for_and_touches_no_other(rehearsal):
    result, requests = rehearsal["runs"][1]
    said = " ".join(result.stdout.split())
    inserted = [path for method, path in requests if method == "compute.instances.insert"]
    assert inserted == [f"projects/{PROJECT}/zones/europe-west1-b/instances"], requests
    changed = [(method, path) for method, path in requests
               if method.rsplit(".", 1)[1] not in ("get", "list", "aggregatedList", "listInstances", "getHealth", "insert")
               and "Operations" not in method]
    assert not changed, changed
    # Only the new VM joins: face-rec-1 serves, face-rec-2 is kept out; the group keeps its member.
    assert "Joining: face-rec-3;" in said, said[-3000:]
    assert rehearsal["replay"].group_members[GROUP] == [compute_replay.BASE + INSTANCES + "face-rec-1"]


def test_the_inventory_plugin_and_gce_vm_yml_give_the_vms_the_same_vars(rehearsal, tmp_path):
    listed = rehearsal["listed"]
    assert listed.returncode == 0, listed.stderr[-2000:]
    found = plain(json.loads(listed.stdout))
    assert sorted(found["face_rec"]["hosts"]) == ["face-rec-1", "face-rec-2", "face-rec-3"]
    assert found["face_rec_monitoring"]["hosts"] == ["face-rec-monitoring"]
    # gce_vm.yml's inventory step, fed the same instance resources.
    (tmp_path / "instances.json").write_text(json.dumps(rehearsal["instances"]))
    play = [{"name": "Add them", "hosts": "localhost", "gather_facts": False,
             "vars_files": [str(ROOT / "playbooks/vars/gce.yml")], "tasks": [
                {"name": "Add the VMs", "ansible.builtin.include_tasks": str(ROOT / "playbooks/tasks/gce_inventory.yml"),
                 "vars": {"gce_inventory_instances": "{{ lookup('ansible.builtin.file', '%s') | from_json }}"
                          % (tmp_path / "instances.json")}}]},
            {"name": "Write their vars", "hosts": "face_rec:face_rec_monitoring", "gather_facts": False, "tasks": [
                {"name": "Write", "ansible.builtin.copy": {
                    "content": "{{ dict(%s | zip(%s | map('extract', hostvars[inventory_hostname]))) | to_json }}"
                               % (COMPARED, COMPARED),
                    "dest": str(tmp_path) + "/{{ inventory_hostname }}.json", "mode": "0600"},
                 "delegate_to": "localhost"}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    (tmp_path / "hosts").write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    result = ansible("ansible-playbook", "-i", str(tmp_path / "hosts"), str(tmp_path / "play.yml"), env={})
    assert result.returncode == 0, result.stdout[-3000:]
    for name in ADDRESSES:
        added = json.loads((tmp_path / f"{name}.json").read_text())
        composed = {key: found["_meta"]["hostvars"][name].get(key) for key in COMPARED}
        if name == "face-rec-monitoring":
            assert composed["ansible_host"] == added["ansible_host"] == ADDRESSES[name]
            continue
        assert composed == added, name
        assert added["ansible_host"] == ADDRESSES[name] and added["ansible_user"] == "ops"
        assert "203.0.113.10" in added["face_rec_extra_trusted_proxies"]


def test_teardown_finds_everything_by_the_fleets_label(rehearsal):
    replay = rehearsal["replay"]
    # A disk a stopped run left, with no VM: found by label all the same.
    replay.resources[f"projects/{PROJECT}/zones/europe-west1-b/disks/face-rec-9"] = {
        **replay.resources[f"projects/{PROJECT}/zones/europe-west1-b/disks/face-rec-1"], "name": "face-rec-9"}
    result = ansible("ansible-playbook", "-i", str(rehearsal["inventory"]), "playbooks/gce_teardown.yml",
                     "-e", "gce_teardown_confirm=face-rec", env=replay.env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert not replay.problems, "\n".join(replay.problems)
    assert not replay.resources, sorted(replay.resources)
