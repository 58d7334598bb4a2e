"""A fresh host's first site.yml, as an engineer runs it against a new Compute Engine VM: over
SSH as the login user with become, from an inventory kept outside inventory/ (a team's own) and
without FACE_REC_CACHE set, as a hand run is. The first run stops on a cast folder that is not a
slug and says that one thing; the host is fit for the re-run, which takes it to serving with
the machine's cached dlib wheel (nothing compiles)."""

import os
import pathlib
import re
import shutil
import sys

import requests
import yaml

HOST = "face-rec-th3"
ADDRESS = "172.30.10.13"  # molecule.yml gives it this address

# What every scenario's tests share (molecule/face_rec_testing.py).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from face_rec_testing import demo_cast, play  # noqa: E402


def write_inventory(folder):
    """An inventory shaped like inventory/example.yml, in a folder of its own."""
    key = os.environ.get("FACE_REC_TESTHOST_KEY") or "/var/cache/face_rec/testhost/ssh/id_ed25519"
    inventory = {"all": {
        "vars": {"ansible_user": "ops", "ansible_ssh_private_key_file": key,
                 "ansible_ssh_common_args": f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={folder}/known_hosts"},
        "children": {"face_rec": {"hosts": {HOST: {"ansible_host": ADDRESS}}}}}}
    path = folder / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


def site(inventory, casts):
    """site.yml as on call runs it: the project's ansible.cfg, no FACE_REC_CACHE."""
    return play("site.yml", inventory=inventory, extra_vars={"faceapp_casts_src": str(casts)}, timeout=1800,
                drop_env=("ANSIBLE_", "MOLECULE_", "FACE_REC_CACHE"))


def task_output(output, task):
    """What ansible-playbook printed for one task."""
    return output.partition(f"TASK [{task}]")[2].partition("TASK [")[0]


def test_first_run_stops_on_a_bad_cast_then_the_rerun_serves(tmp_path):
    inventory = write_inventory(tmp_path)
    casts = tmp_path / "casts"
    demo_cast.build_demo_cast(casts)
    bad = casts / "Late Show"
    shutil.copytree(casts / "presidents", bad)

    first = site(inventory, casts)
    output = first.stdout + first.stderr
    assert first.returncode != 0, output[-3000:]
    # One failure, which names the folder and what is wrong with it; no handler adds another.
    assert output.count("FAILED!") == 1, output[-6000:]
    assert "Late Show: a cast folder's name must be a slug" in output
    assert "Nothing was copied to any host" in output
    assert re.search(rf"{HOST}\s+: .*failed=1", output), output[-2000:]
    # The wheel came from the machine's cache, found by the role's default: nothing compiled.
    assert f"changed: [{HOST}]" in task_output(output, "dlib : Upload the controller's wheel"), output
    assert "TASK [dlib : Build dlib from source" not in output

    shutil.rmtree(bad)
    second = site(inventory, casts)
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-6000:]
    assert "TASK [dlib : Build dlib from source" not in output
    print(f"\nfresh host to serving over SSH: first run {first.seconds} s (stopped at the casts), re-run {second.seconds} s")

    assert requests.get(f"http://{ADDRESS}/healthz", timeout=10).status_code == 200
    with open(demo_cast.test_images() / "obama2.jpg", "rb") as photo:
        answer = requests.post(f"http://{ADDRESS}/api/v1/match", files={"image": photo},
                               data={"cast": "presidents"}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["faces"][0]["matches"][0]["member"] == "obama"
