"""The Compute Engine plays cannot reach Google Cloud from here: every input check runs, and
fails with a clear message before anything talks to it; good inputs get past the checks."""

import importlib
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

GOOGLE_FIRST_TASK = "TASK [Create the fleet's VPC network]"


def run_play(repo_root, playbook, extra_vars, inventory="inventory/gcp.yml"):
    """The play as on call runs it, with the Compute Engine inventory (its `projects:` empty, so
    it asks Google nothing: the project comes as an extra var, its check left to its own test)."""
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1", "GCP_AUTH_KIND": "serviceaccount",
           "GCP_SERVICE_ACCOUNT_FILE": "/nonexistent/face-rec-test.json"}
    extra_vars = {"gce_check_inventory_project": False, **extra_vars}
    return subprocess.run([ansible_playbook, *(["-i", inventory] if inventory else []),
                           str(repo_root / "playbooks" / playbook), "-e", json.dumps(extra_vars)],
                          capture_output=True, text=True, timeout=120, cwd=repo_root, env=env, check=False)


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A throwaway self-signed certificate and its keys, made here (no key is committed)."""
    folder = tmp_path_factory.mktemp("tls")
    files = SimpleNamespace(certificate=folder / "fullchain.pem", key=folder / "privkey.pem",
                            encrypted_key=folder / "encrypted.pem", junk=folder / "junk.pem",
                            ssh_key=folder / "id_ed25519")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(files.key), "-out", str(files.certificate), "-days", "1",
                    "-subj", "/CN=face-rec.test"], check=True, capture_output=True)
    subprocess.run(["openssl", "pkcs8", "-topk8", "-in", str(files.key), "-out", str(files.encrypted_key),
                    "-passout", "pass:face-rec-test"], check=True, capture_output=True)
    files.junk.write_text("not a certificate\n")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ops@face-rec.test", "-f", str(files.ssh_key)],
                   check=True, capture_output=True)
    return files


def good_vars(tls):
    return {"gce_project": "face-rec-test", "gce_ssh_source_ranges": ["198.51.100.0/24"],
            "gce_tls_certificate_file": str(tls.certificate), "gce_tls_private_key_file": str(tls.key),
            "gce_ssh_public_key_file": f"{tls.ssh_key}.pub"}


@pytest.fixture
def good(tls):
    return good_vars(tls)


# Each case: extra vars over the good ones (None drops one; a callable gets the tls files).
BAD_INPUTS = [
    ({"gce_project": None}, "gce_project must be a project id"),
    ({"gce_project": "Not_A_Project"}, "got Not_A_Project"),
    ({"gce_zone": "europe"}, "gce_zone a zone like europe-west1-b (got europe)"),
    ({"gce_vm_count": 0}, "gce_vm_count a whole number from 1 to 20 (got 0)"),
    ({"gce_vm_count": "two"}, "(got two)"),
    ({"gce_vm_count": 21}, "(got 21)"),
    ({"gce_prefix": "Face_Rec"}, "gce_prefix a lowercase name (got Face_Rec)"),
    ({"gce_draining_timeout_s": -1}, "gce_draining_timeout_s 0-3600 (got -1)"),
    ({"gce_tls_profile": "COMPATIBLE"}, "gce_tls_profile must be MODERN or RESTRICTED (got COMPATIBLE)"),
    ({"gce_lb_scheme": "INTERNAL"}, "or EXTERNAL (the classic one; got INTERNAL)"),
    # SSH ranges: missing, malformed, or letting in (nearly) everyone.
    ({"gce_ssh_source_ranges": []}, "gce_ssh_source_ranges must list the IPv4 CIDR ranges"),
    ({"gce_ssh_source_ranges": "198.51.100.0/24"}, "the ranges must be a list"),
    ({"gce_ssh_source_ranges": ["everyone"]}, "everyone is not an IPv4 CIDR range"),
    ({"gce_ssh_source_ranges": ["0.0.0.0/0"]}, "0.0.0.0/0 is wider than /8; together they cover the whole internet"),
    ({"gce_ssh_source_ranges": ["0.0.0.0/1", "128.0.0.0/1"]}, "together they cover the whole internet"),
    ({"gce_ssh_source_ranges": [f"{i}.0.0.0/8" for i in range(256)]}, "together they cover the whole internet"),
    ({"gce_ssh_source_ranges": ["198.51.100.0/24", "10.0.0.0/7"]}, "10.0.0.0/7 is wider than /8"),
    ({"gce_ssh_source_ranges": ["256.51.100.0/24"]}, "256.51.100.0/24 is not an IPv4 CIDR range"),
    ({"gce_ssh_source_ranges": ["198.51.100.0/33"]}, "198.51.100.0/33 has a bad prefix length"),
    ({"gce_ssh_source_ranges": ["198.51.100.0/255.255.255.0"]}, "has a bad prefix length"),
    ({"gce_ssh_source_ranges": ["198.51.100.7/24"]}, "198.51.100.7/24 has host bits set (did you mean 198.51.100.0/24"),
    ({"gce_ssh_source_ranges": ["2001:db8::/32"]}, "2001:db8::/32 is not an IPv4 CIDR range"),
    # The certificate and its key.
    ({"gce_tls_certificate_file": None}, "gce_tls_certificate_file must name the PEM certificate"),
    ({"gce_tls_certificate_file": "/nonexistent/fullchain.pem"}, "/nonexistent/fullchain.pem is not a readable file"),
    (lambda tls: {"gce_tls_certificate_file": str(tls.certificate.parent)}, "is not a readable file"),
    (lambda tls: {"gce_tls_certificate_file": str(tls.junk)}, "must hold PEM certificates only"),
    (lambda tls: {"gce_tls_certificate_file": str(tls.key)}, "must hold PEM certificates only"),
    ({"gce_tls_private_key_file": None}, "Give the certificate's private key once"),
    (lambda tls: {"gce_tls_private_key": tls.key.read_text()}, "Give the certificate's private key once"),
    ({"gce_tls_private_key_file": "/nonexistent/privkey.pem"}, "/nonexistent/privkey.pem is not a readable file"),
    (lambda tls: {"gce_tls_private_key_file": str(tls.certificate)}, "must be one unencrypted PEM private key"),
    (lambda tls: {"gce_tls_private_key_file": str(tls.encrypted_key)}, "must be one unencrypted PEM private key"),
    (lambda tls: {"gce_tls_private_key_file": None, "gce_tls_private_key": "not a key"},
     "The private key (gce_tls_private_key) must be one unencrypted PEM private key"),
    # The login.
    ({"gce_login": "password"}, "gce_login must be ssh-keys"),
    ({"gce_ssh_user": "root"}, "a login name other than root, got root"),
    ({"gce_ssh_public_key_file": "/nonexistent/id_ed25519.pub"}, "must be one OpenSSH public key"),
    (lambda tls: {"gce_ssh_public_key_file": str(tls.ssh_key)}, "must be one OpenSSH public key"),
    ({"gce_login": "os-login"}, "your OS Login POSIX user"),
    # The Alertmanager webhook, when given.
    ({"prometheus_alert_webhook_url": "hooks.example.test/face-rec"}, "prometheus_alert_webhook_url must be an http"),
    ({"prometheus_alert_webhook_url": "ftp://hooks.example.test/x"}, "prometheus_alert_webhook_url must be an http"),
    ({"prometheus_alert_webhook_url": "https:///no-host"}, "prometheus_alert_webhook_url must be an http"),
]


@pytest.fixture(scope="module")
def bad_input_messages(repo_root, tls, tmp_path_factory):
    """Each bad input through playbooks/tasks/gce_inputs.yml, the checks gce_vm.yml runs before
    anything else, all in one ansible-playbook run (one start-up, not one per case: they were most
    of the Python tests' time): {case number: the message it stopped with}. The tests below run
    gce_vm.yml itself, to show those checks come before any call to Google."""
    folder = tmp_path_factory.mktemp("inputs")
    tasks = []
    for number, (bad, _) in enumerate(BAD_INPUTS):
        bad = bad(tls) if callable(bad) else bad
        case_vars = {k: v for k, v in {**good_vars(tls), **bad}.items() if v is not None}
        tasks.append({"name": f"Case {number}", "block": [
            {"name": "Check the inputs", "ansible.builtin.include_tasks": str(repo_root / "playbooks/tasks/gce_inputs.yml"),
             "vars": case_vars},
            {"name": "Note that it passed", "ansible.builtin.set_fact": {
                "case_messages": "{{ case_messages | combine({'%d': 'passed'}) }}" % number}}],
            "rescue": [{"name": "Note the message", "ansible.builtin.set_fact": {
                # A check that loops names its failed items in their own results.
                "case_messages": "{{ case_messages | combine({'%d': ansible_failed_result.msg ~ ' ' ~ "
                                 "(ansible_failed_result.results | default([]) | selectattr('failed', 'defined') "
                                 "| selectattr('failed') | map(attribute='msg') | join(' '))}) }}" % number}}]})
    tasks.append({"name": "Write them", "ansible.builtin.copy": {"content": "{{ case_messages | to_json }}",
                                                                 "dest": str(folder / "messages.json"), "mode": "0600"}})
    play = [{"name": "Each bad input", "hosts": "localhost", "gather_facts": False, "tasks": tasks,
             "vars_files": [str(repo_root / "playbooks/vars/gce.yml")], "vars": {"case_messages": {}}}]
    (folder / "play.yml").write_text(yaml.safe_dump(play))
    (folder / "hosts").write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "GCP_AUTH_KIND": "serviceaccount",
           "ANSIBLE_FILTER_PLUGINS": str(repo_root / "playbooks" / "filter_plugins")}
    extra = {"gce_check_inventory_project": False, "gce_inventory_file": str(repo_root / "inventory" / "gcp.yml")}
    result = subprocess.run([ansible_playbook, "-i", str(folder / "hosts"), str(folder / "play.yml"), "-e", json.dumps(extra)],
                            capture_output=True, text=True, timeout=300, cwd=repo_root, env=env, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    return {int(k): " ".join(str(v).split()) for k, v in json.loads((folder / "messages.json").read_text()).items()}


@pytest.mark.parametrize("case", range(len(BAD_INPUTS)), ids=[message for _, message in BAD_INPUTS])
def test_gce_vm_refuses_bad_input(bad_input_messages, tls, case):
    bad, message = BAD_INPUTS[case]
    bad = bad(tls) if callable(bad) else bad
    said = bad_input_messages[case]
    assert message in said, said
    # The webhook URL is a secret: the message never repeats it.
    if "prometheus_alert_webhook_url" in bad:
        assert bad["prometheus_alert_webhook_url"] not in said


def test_gce_vm_checks_its_inputs_before_asking_google(repo_root, good):
    result = run_play(repo_root, "gce_vm.yml", {**good, "gce_vm_count": 0})
    assert result.returncode != 0
    assert "gce_vm_count a whole number from 1 to 20 (got 0)" in " ".join(result.stdout.split()), result.stdout[-2000:]
    assert GOOGLE_FIRST_TASK not in result.stdout


@pytest.mark.parametrize("key_as", ["file", "vaulted text"])
def test_gce_vm_good_input_passes_the_checks(repo_root, good, tls, key_as):
    if key_as != "file":
        good = {**good, "gce_tls_private_key_file": "", "gce_tls_private_key": tls.key.read_text()}
    result = run_play(repo_root, "gce_vm.yml", {**good, "prometheus_alert_webhook_url": "https://hooks.example.test/x"})
    # Past the checks, the first call to Google Cloud fails here (no credentials, no network).
    assert GOOGLE_FIRST_TASK in result.stdout, result.stdout[-2000:]
    assert result.returncode != 0
    key_body = tls.key.read_text().splitlines()[1]
    assert key_body not in result.stdout + result.stderr


@pytest.mark.parametrize("login", ["ssh-keys", "os-login"])
def test_gce_vm_good_login_passes_the_checks(repo_root, good, login):
    extra = {**good, "gce_login": login, "gce_os_login_user": "sa_112233445566778899"}
    result = run_play(repo_root, "gce_vm.yml", extra)
    assert GOOGLE_FIRST_TASK in result.stdout, result.stdout[-2000:]


def test_gce_vm_never_takes_a_local_test_host(repo_root, good):
    """ansible.cfg's default inventory is the local test host's: without -i inventory/gcp.yml the
    play stops before Google is asked anything, naming the host."""
    result = run_play(repo_root, "gce_vm.yml", good, inventory=None)
    said = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert "run them with -i inventory/gcp.yml" in said and "face-rec-local" in said, said[-2000:]
    assert GOOGLE_FIRST_TASK not in result.stdout


def test_gce_vm_wants_its_project_in_the_inventory(repo_root, good):
    result = run_play(repo_root, "gce_vm.yml", {**good, "gce_check_inventory_project": True})
    said = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert "inventory/gcp.yml lists the projects" in said and "put face-rec-test there" in said, said[-2000:]
    assert GOOGLE_FIRST_TASK not in result.stdout


def test_gce_teardown_wants_a_confirmation(repo_root):
    result = run_play(repo_root, "gce_teardown.yml", {"gce_project": "face-rec-test"})
    assert result.returncode != 0
    assert "add -e gce_teardown_confirm=face-rec" in " ".join(result.stdout.split())
    assert "Delete the forwarding rule" not in result.stdout


def test_gce_teardown_needs_no_certificate(repo_root):
    result = run_play(repo_root, "gce_teardown.yml", {"gce_project": "face-rec-test", "gce_teardown_confirm": "face-rec"})
    assert "TASK [Delete the forwarding rules]" in result.stdout, result.stdout[-2000:]
    assert result.returncode != 0


@pytest.mark.parametrize("playbook", ["site.yml", "playbooks/deploy.yml", "playbooks/rollback.yml",
                                      "playbooks/status.yml", "playbooks/gce_vm.yml", "playbooks/gce_teardown.yml",
                                      "playbooks/forget.yml"])
def test_playbooks_pass_syntax_check(repo_root, playbook):
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    result = subprocess.run([ansible_playbook, "--syntax-check", "-i", "inventory/local.yml", playbook],
                            capture_output=True, text=True, timeout=120, cwd=repo_root, check=False)
    assert result.returncode == 0, result.stderr


def test_face_rec_cidr_problems_takes_narrow_ranges(repo_root):
    sys.path.insert(0, str(repo_root / "playbooks" / "filter_plugins"))
    from face_rec_cidr import face_rec_cidr_problems  # pylint: disable=import-outside-toplevel
    assert not face_rec_cidr_problems(["198.51.100.0/24", "203.0.113.7/32", "203.0.113.8", "10.0.0.0/8"])


def _module_spec(module_name):
    """The argument spec a google.cloud module gives AnsibleModule (read by stopping it there)."""
    from unittest import mock  # pylint: disable=import-outside-toplevel

    from ansible.module_utils import basic  # pylint: disable=import-outside-toplevel

    module = importlib.import_module(f"ansible_collections.google.cloud.plugins.modules.{module_name}")
    seen = {}

    class Seen(Exception):
        pass

    def stop(_self, *_args, **kwargs):
        seen.update(kwargs)
        raise Seen

    with mock.patch.object(basic.AnsibleModule, "__init__", stop):
        with pytest.raises(Seen):
            module.main()
    return seen


@pytest.mark.parametrize("playbook", ["gce_vm.yml", "gce_teardown.yml"])
def test_gce_tasks_use_the_collections_arguments(repo_root, playbook):
    # ansible-lint's args rule is experimental (a warning only) and gives up on these plays
    # (templated values in nested options), so every google.cloud task is checked here against
    # the installed collection's argument spec; templated values cannot be type-checked.
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # pylint: disable=import-outside-toplevel
    problems = []
    for play in yaml.safe_load((repo_root / "playbooks" / playbook).read_text()):
        for task in play.get("tasks", []):
            module = next((key for key in task if key.startswith("google.cloud.")), None)
            if module is None:
                continue
            spec = _module_spec(module.split(".")[-1])
            arguments = {"auth_kind": "application", **task[module]}  # auth_kind comes from module_defaults
            result = ArgumentSpecValidator(spec["argument_spec"], mutually_exclusive=spec.get("mutually_exclusive"),
                                           required_if=spec.get("required_if")).validate(arguments)
            problems += [f"{task['name']}: {error}" for error in result.error_messages if "is of type" not in error]
    assert not problems


@pytest.mark.parametrize("playbook", ["deploy.yml", "rollback.yml", "status.yml", "site.yml"])
def test_an_inventory_with_no_app_host_stops_every_play_saying_so(repo_root, tmp_path, playbook):
    """inventory/gcp.yml without its project finds no VM: each play stops naming the empty group
    and what to check, instead of skipping every host and exiting 0."""
    empty = tmp_path / "empty.yml"
    empty.write_text("all:\n  children:\n    face_rec:\n      hosts: {}\n")
    path = repo_root / playbook if playbook == "site.yml" else repo_root / "playbooks" / playbook
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    result = subprocess.run([ansible_playbook, "-i", str(empty), str(path)], capture_output=True, text=True,
                            timeout=120, cwd=repo_root, env={**os.environ, "ANSIBLE_NOCOLOR": "1"}, check=False)
    said = " ".join(result.stdout.split())
    assert result.returncode != 0, said[-2000:]
    assert "has no host in the face_rec group" in said and "set its `projects:`" in said, said[-2000:]
