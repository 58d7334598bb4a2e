"""Every role documents its variables, and the README tables match meta/argument_specs.yml."""

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
