"""The alert rules roles/prometheus installs pass their unit tests (promtool test rules), and
every rule has one and a row in RUNBOOK.md's alert table."""

import subprocess

import yaml


def test_alert_rules_pass_their_unit_tests(repo_root):
    result = subprocess.run([str(repo_root / "scripts/promtool.sh"), "test", "rules",
                             str(repo_root / "tests/prometheus/face_rec_rules_test.yml")],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_test_and_a_runbook_entry(repo_root):
    rules = yaml.safe_load((repo_root / "roles/prometheus/files/face_rec_rules.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((repo_root / "tests/prometheus/face_rec_rules_test.yml").read_text())
    tested = {case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", [])}
    assert alerts == tested
    runbook = (repo_root / "RUNBOOK.md").read_text()
    assert all(f"`{alert}`" in runbook for alert in alerts), alerts
