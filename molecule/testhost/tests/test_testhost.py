"""The test-host contract: what our roles expect of a fresh Compute Engine VM."""

import os

import pytest
import testinfra


def _fleet():
    """Every host of the scenario's inventory, to compare them with each other."""
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    names = testinfra.utils.ansible_runner.AnsibleRunner(inventory).get_hosts("face_rec")
    return [testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}") for name in names]


def test_systemd_is_pid_1_and_booted(host):
    assert host.process.get(pid=1).comm == "systemd"
    assert host.run("systemctl is-system-running").stdout.strip() == "running"


def test_login_user_is_not_root_and_has_passwordless_sudo(host):
    assert host.user().name == "ops"
    assert "sudo" in host.user("ops").groups
    assert host.run("sudo -n id -u").stdout.strip() == "0"


def test_cloud_image_basics(host):
    assert host.system_info.distribution == "debian"
    assert host.system_info.release.startswith("12")
    assert host.run("python3 -c 'import sys; print(sys.version_info[:2])'").stdout.strip() == "(3, 11)"
    for package in ("openssh-server", "sudo", "python3-apt", "unattended-upgrades"):
        assert host.package(package).is_installed, package
    assert host.service("ssh").is_running


def test_apt_reaches_the_mirror(host):
    with host.sudo():
        update = host.run("apt-get update")
    assert update.rc == 0, update.stderr
    assert host.run("apt-cache policy nginx").stdout.count("Candidate: 1.22") == 1


@pytest.fixture(scope="module")
def fleet():
    return _fleet()


def test_every_host_has_its_own_address_and_identity(fleet):
    addresses = [h.interface("eth0").addresses[0] for h in fleet]
    machine_ids = [h.file("/etc/machine-id").content_string.strip() for h in fleet]
    assert len(fleet) == 3
    assert len(set(addresses)) == len(fleet)
    assert len(set(machine_ids)) == len(fleet) and all(machine_ids)


def test_hosts_reach_each_other(host, fleet):
    for peer in fleet:
        address = peer.interface("eth0").addresses[0]
        assert host.run(f"ping -c1 -W2 {address}").rc == 0, address
