"""Each value two roles share is defined once, in roles/face_rec, and every pair resolves to it.

tests/role_variables/resolve.yml loads every role's defaults together and prints the named
variables as they resolve: once as they are, once with every shared value given on the command
line (strings, as on call gives them), so a role that kept its own copy shows up either way.
"""

import concurrent.futures
import json
import os
import pathlib
import re
import subprocess
import sys
import urllib.parse

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
ROLES = sorted(path.name for path in (ROOT / "roles").iterdir())
SHARED = yaml.safe_load((ROOT / "roles/face_rec/defaults/main.yml").read_text())
# Each shared value and the role variables that must equal it.
PAIRS = {
    "face_rec_root": ["faceapp_root", "uwsgi_root", "gunicorn_root", "nginx_app_root", "roll_root"],
    "face_rec_venv": ["dlib_venv", "faceapp_venv", "uwsgi_venv", "gunicorn_venv"],
    "face_rec_config_file": ["faceapp_config_file", "uwsgi_config_file", "gunicorn_config_file"],
    "face_rec_service": ["uwsgi_service"],
    "face_rec_app_service": ["roll_service", "faceapp_service"],
    "face_rec_user": ["faceapp_user", "uwsgi_user", "gunicorn_user"],
    "face_rec_group": ["faceapp_group", "uwsgi_group", "gunicorn_group"],
    "face_rec_app_socket": ["uwsgi_socket", "nginx_uwsgi_socket"],
    "face_rec_gunicorn_socket": ["gunicorn_socket", "nginx_gunicorn_socket"],
    "face_rec_gunicorn_service": ["gunicorn_service"],
    "face_rec_wsgi_server": ["nginx_app_server"],
    "face_rec_request_timeout_s": ["uwsgi_harakiri_s", "gunicorn_timeout_s", "gunicorn_graceful_timeout_s"],
    "face_rec_max_upload_mb": ["faceapp_max_upload_mb", "nginx_client_max_body_size_mb", "uwsgi_post_buffering_mb"],
    "face_rec_media_max_age_s": ["nginx_media_max_age_s"],
    "face_rec_nginx_status_port": ["nginx_status_port", "exporters_nginx_status_url"],
    "face_rec_node_exporter_port": ["exporters_node_port", "prometheus_node_port"],
    "face_rec_nginx_exporter_port": ["exporters_nginx_port", "prometheus_nginx_exporter_port"],
    "face_rec_mtail_port": ["exporters_mtail_port", "prometheus_mtail_port"],
    "face_rec_controller_cache": ["dlib_controller_cache_dir", "uwsgi_controller_cache_dir", "faceapp_demo_casts_dir"],
    "face_rec_release_store": ["faceapp_release_store"],
    "face_rec_apt_lock_timeout_s": [f"{role}_apt_lock_timeout_s" for role in
                                    ("dlib", "exporters", "faceapp", "nginx", "prometheus", "uwsgi")],
    "face_rec_web_group": ["uwsgi_socket_group", "gunicorn_socket_group", "nginx_web_group"],
    "face_rec_slug_pattern": ["nginx_slug_pattern", "faceapp_slug_pattern"],
    "face_rec_http_port": ["nginx_listen_port", "nginx_upstream_port", "prometheus_app_port"],
    "face_rec_https_port": ["nginx_tls_port"],
}
# Role variables that are a folder under the shared value.
UNDER = {"dlib_controller_cache_dir", "uwsgi_controller_cache_dir", "faceapp_demo_casts_dir"}
# What the values derived from others become when those are CHANGED.
DERIVED = {"face_rec_venv": "/srv/fr/venv", "face_rec_app_service": "fr-gunicorn"}
# Every shared value changed, as command-line strings (face_rec_venv follows face_rec_root).
CHANGED = {
    "face_rec_root": "/srv/fr", "face_rec_service": "fr-app", "face_rec_config_file": "/etc/fr/settings.toml", "face_rec_user": "fr",
    "face_rec_group": "frg", "face_rec_app_socket": "/run/fr/app.sock", "face_rec_request_timeout_s": "45",
    "face_rec_max_upload_mb": "12", "face_rec_media_max_age_s": "300", "face_rec_nginx_status_port": "8082",
    "face_rec_node_exporter_port": "9101", "face_rec_nginx_exporter_port": "9114", "face_rec_mtail_port": "3904",
    "face_rec_controller_cache": "/srv/fr-cache", "face_rec_release_store": "/srv/fr-releases", "face_rec_apt_lock_timeout_s": "300", "face_rec_web_group": "web",
    "face_rec_slug_pattern": "[a-z]{1,9}",
    "face_rec_gunicorn_service": "fr-gunicorn", "face_rec_gunicorn_socket": "/run/fr/gunicorn.sock", "face_rec_wsgi_server": "gunicorn", "face_rec_http_port": "8080", "face_rec_https_port": "8443",
}


def resolve(strings):
    names = sorted({*PAIRS, *(name for names in PAIRS.values() for name in names), "uwsgi_runtime_dir"})
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
               str(ROOT / "tests/role_variables/resolve.yml"), "-e", json.dumps({"resolve_roles": ROLES, "resolve_names": names})]
    for name, value in strings.items():
        command += ["-e", f"{name}={value}"]
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.json", ANSIBLE_NOCOLOR="1")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    output = json.loads(result.stdout)
    return [task["hosts"]["localhost"]["msg"] for play in output["plays"] for task in play["tasks"]
            if task["task"]["name"] == "Show the variables as they resolve"][0]


@pytest.fixture(scope="module")
def resolved():
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(("defaults", "changed"), pool.map(resolve, ({}, CHANGED))))


def comparable(name, value):
    """What a role makes of the value: an int role variable is read with `| int`; the nginx
    exporter's stub_status URL carries the port."""
    if name == "exporters_nginx_status_url":
        return urllib.parse.urlsplit(value).port
    if name in UNDER:
        return os.path.dirname(value)
    return int(value) if isinstance(value, int) or re.fullmatch(r"\d+", str(value)) else value


@pytest.mark.parametrize("run", ["defaults", "changed"])
@pytest.mark.parametrize("shared", sorted(PAIRS))
def test_every_pair_resolves_to_the_shared_value(shared, run, resolved):
    values = resolved[run]
    expected = comparable(shared, values[shared])
    if run == "changed":
        expected_given = comparable(shared, CHANGED.get(shared, DERIVED.get(shared)))
        assert expected == expected_given
    got = {name: comparable(name, values[name]) for name in PAIRS[shared]}
    assert got == dict.fromkeys(PAIRS[shared], expected)


def test_uwsgi_runtime_dir_is_the_socket_folder(resolved):
    for values in resolved.values():
        assert values["uwsgi_runtime_dir"] == os.path.dirname(values["face_rec_app_socket"])


def test_shared_values_are_written_once():
    """No other role writes a shared path or port itself (its argument spec and README document
    the default; its defaults, vars, tasks, templates and files read roles/face_rec's, a file
    given it by its task)."""
    literals = [value for value in SHARED.values()
                if isinstance(value, str) and value.startswith("/") or isinstance(value, int) and value >= 1000]
    found = []
    for path in sorted(ROOT.glob("roles/*/*/**/*")):
        relative = path.relative_to(ROOT)
        if not path.is_file() or relative.parts[1] == "face_rec" or relative.parts[2] not in (
                "defaults", "vars", "tasks", "handlers", "templates", "files"):
            continue
        text = path.read_text()
        found += [f"{relative}: {value}" for value in literals if re.search(rf"(?<![\w/.]){re.escape(str(value))}(?![\w.])", text)]
    assert not found, found


def test_the_app_keeps_media_as_long_as_nginx():
    """The app's own Cache-Control on photos and thumbnails (MEDIA_MAX_AGE_S, a constant of the
    app's) equals what nginx sends: the app cannot read roles/face_rec, so it is checked here."""
    constants = [int(match) for path in sorted((ROOT / "app/face_rec").rglob("*.py"))
                 for match in re.findall(r"^MEDIA_MAX_AGE_S\s*=\s*(\d+)\s*$", path.read_text(), re.M)]
    assert constants == [SHARED["face_rec_media_max_age_s"]]


def test_the_app_takes_the_same_slugs_as_the_roles():
    """The app's slug pattern (face_rec/casts.py, which cannot read roles/face_rec) is the one the
    roles check cast folders and forget's names against and nginx serves photos by."""
    source = (ROOT / "app/face_rec/casts.py").read_text()
    assert re.findall(r'^SLUG = re\.compile\(r"(.*)"\)$', source, re.M) == [SHARED["face_rec_slug_pattern"]]


def test_no_role_but_face_rec_names_the_controller_cache():
    """$FACE_REC_CACHE and its default are read in roles/face_rec alone."""
    found = [str(path.relative_to(ROOT)) for path in sorted(ROOT.glob("roles/*/*/**/*"))
             if path.is_file() and path.relative_to(ROOT).parts[1] != "face_rec"
             and path.relative_to(ROOT).parts[2] in ("defaults", "vars", "tasks", "handlers", "templates", "files")
             and ("FACE_REC_CACHE" in path.read_text() or "/var/cache/face_rec" in path.read_text())]
    assert not found, found
