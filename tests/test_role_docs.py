"""Every role documents its variables, and the README tables match meta/argument_specs.yml."""

import shutil
import subprocess
import sys

import yaml


def test_readme_tables_are_up_to_date(repo_root):
    result = subprocess.run([sys.executable, str(repo_root / "scripts/role_docs.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_default_is_specified(repo_root):
    for role in (repo_root / "roles").iterdir():
        defaults = yaml.safe_load((role / "defaults/main.yml").read_text()) or {}
        spec = yaml.safe_load((role / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
        assert set(defaults) <= set(spec), (role.name, set(defaults) - set(spec))


def test_a_spec_default_that_restates_an_expression_fails_the_check(repo_root, tmp_path):
    """role_docs.py --check fails on a spec default that is the value an expression in
    defaults/main.yml resolves to today, not the expression: it would go stale unseen."""
    copy = tmp_path / "repo"
    shutil.copytree(repo_root / "roles", copy / "roles")
    shutil.copytree(repo_root / "scripts", copy / "scripts")
    spec = copy / "roles/faceapp/meta/argument_specs.yml"
    spec.write_text(spec.read_text().replace('default: "{{ face_rec_root }}"', "default: /opt/face_rec", 1))
    result = subprocess.run([sys.executable, str(copy / "scripts/role_docs.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "faceapp main: faceapp_root is '/opt/face_rec' in its spec, '{{ face_rec_root }}' in defaults" in result.stderr
