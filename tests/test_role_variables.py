"""Every int, float and bool role variable given on the command line, as on call gives it.

`-e name=value` hands Ansible a string, the role's argument spec checks that it converts but
leaves it a string, and extra vars outrank any set_fact: each role reads its typed variables
through `| int`, `| float` or `| bool` (see any role's meta/argument_specs.yml). Here each is
passed as a string to tests/role_variables/render.yml, which validates them against the role's
spec, runs the role's own computations (tasks/facts.yml) and renders every template of the
role on the controller: the values must reach the files as numbers, and the play must pass.
"""

import concurrent.futures
import dataclasses
import ipaddress
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib

import jinja2
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
PLAYBOOK = ROOT / "tests/role_variables/render.yml"
TYPED = ("int", "float", "bool")
WORKERS = 4
HAS_NVCC = bool(shutil.which("nvcc")) or pathlib.Path("/usr/local/cuda/bin/nvcc").exists()


@dataclasses.dataclass
class Case:
    id: str
    role: str
    # Passed as `-e name=value`: strings, as on the command line.
    strings: dict
    # Lists and dicts the case needs, passed as JSON (not under test).
    data: dict = dataclasses.field(default_factory=dict)
    # Role facts to read back, and what the test checks in them and in the rendered templates.
    facts: tuple = ()
    check: object = None
    # Substrings of the failure's message, for a case that must fail.
    fails: tuple = ()
    # False: values of the wrong type, on purpose.
    valid: bool = True


def site_of(templates, balancer=False):
    """The site as nginx reads it: the app host's or the balancer's, the security headers it
    includes and the stub_status server (roles/nginx/tasks/config.yml writes them apart)."""
    return "".join(templates[name] for name in ("site_balancer.conf.j2" if balancer else "site_app.conf.j2",
                                                "security_headers.conf.j2", "stub_status.conf.j2"))


def check_nginx_tls(templates, facts):
    site, conf = site_of(templates), templates["nginx.conf.j2"]
    assert facts["nginx_match_in_flight"] == 1000
    assert "limit_conn match_in_flight 1000;" in site
    assert "listen 8080 default_server;" in site
    assert "listen 8443 ssl default_server;" in site
    # "8443" == 443 would be false too; the redirect names the port only when it is not 443.
    assert "return 301 https://$host:8443$request_uri;" in site
    assert 'add_header Strict-Transport-Security "max-age=600" always;' in site
    assert "client_max_body_size 12m;" in site and "larger than 12 MB" in conf
    assert "client_max_body_size 20k;" in site and "no request body over 20 KB" in conf
    assert "zone=pages:10m rate=21r/s;" in conf and "limit_req zone=pages burst=101 nodelay;" in site
    assert site.count("limit_conn per_client 33;") == 2  # the HTTPS server and its match location
    assert site.count("limit_conn matches_per_client 3;") == 1
    # Busy after 1 s: /healthz on plain HTTP and on HTTPS; after 3 s: /metrics, the pages; a
    # match after 5 s, which the app is told.
    assert site.count("uwsgi_read_timeout 1s;") == 2 and site.count("uwsgi_send_timeout 1s;") == 2
    assert site.count("uwsgi_read_timeout 3s;") == 2 and site.count("uwsgi_send_timeout 3s;") == 2
    assert site.count("uwsgi_read_timeout 5s;") == 1 and "uwsgi_param FACE_REC_ANSWER_WITHIN_S 5;" in site
    assert "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" in site
    assert "limit_req zone=match burst=7 nodelay;" in site
    assert "listen 127.0.0.1:8082;" in site
    assert "worker_connections 900;" in conf and "keepalive_timeout 90s;" in conf
    assert "rate=3r/s;" in conf
    assert "503 4;" in conf


def check_nginx_plain(templates, facts):
    site, conf = site_of(templates), templates["nginx.conf.j2"]
    # Derived: uWSGI's worker count (one per core without roles/uwsgi) times 4, a number.
    assert facts["nginx_match_in_flight"] == facts["processor_vcpus"] * 4
    assert f"limit_conn match_in_flight {facts['processor_vcpus'] * 4};" in site
    # "false" is a true string: TLS stays off only if the role reads it as a bool.
    assert "ssl" not in site and "Strict-Transport-Security" not in site and "return 301" not in site
    assert "listen 80 default_server;" in site
    # The spec takes 1e3 as an int; nginx would not.
    assert "worker_connections 1000;" in conf
    assert "keepalive_timeout 75s;" in conf


def check_nginx_balancer_derived(templates, facts):
    # The balancer waits 2 s past what an app host's nginx waits before it answers busy.
    site = site_of(templates, balancer=True)
    assert "proxy_read_timeout 5s;" in site and "proxy_send_timeout 5s;" in site
    assert "proxy_read_timeout 7s;" in site and "proxy_send_timeout 7s;" in site


def check_nginx_workers(templates, facts):
    # Given uWSGI's worker count (roles/uwsgi's uwsgi_workers in a play), as a string.
    assert facts["nginx_match_in_flight"] == 15
    assert "limit_conn match_in_flight 15;" in site_of(templates)


def check_nginx_edge_tls(templates, facts):
    site, conf, params = site_of(templates), templates["nginx.conf.j2"], templates["uwsgi_params.j2"]
    # Plain HTTP here; HSTS and the redirect follow the edge's X-Forwarded-Proto.
    assert "ssl" not in site and "listen 80 default_server;" in site
    assert "add_header Strict-Transport-Security $face_rec_hsts always;" in site
    assert 'https "max-age=700";' in conf
    # Longer than Google's load balancer keeps its connections to a backend (600 s).
    assert "keepalive_timeout 620s;" in conf
    assert "if ($face_rec_plain_http_at_edge) {" in site and "return 301 https://$host$request_uri;" in site
    # The header is believed from the trusted proxies only, on the connection's own address.
    assert "geo $realip_remote_addr $face_rec_from_proxy {" in conf
    assert "        130.211.0.0/22 1;\n        198.51.100.7 1;\n" in conf
    assert "set_real_ip_from 198.51.100.7;" in site and "real_ip_header X-Forwarded-For;" in site
    assert site.count('add_header Cache-Control "private, max-age=300, must-revalidate" always;') == 2
    assert "REQUEST_SCHEME     $face_rec_scheme;" in params and "$face_rec_https if_not_empty;" in params


def check_nginx_balancer(templates, facts):
    site, upstream = site_of(templates, balancer=True), templates["upstream.conf.j2"]
    assert "server 10.0.0.1:81 max_fails=3 fail_timeout=11s;" in upstream
    assert "server 10.0.0.2:8080 max_fails=3 fail_timeout=11s down;" in upstream
    assert "keepalive 17;" in upstream
    assert "proxy_connect_timeout 4s;" in site
    assert "proxy_read_timeout 4s;" in site and "proxy_send_timeout 4s;" in site
    assert "proxy_read_timeout 7s;" in site and "non_idempotent;" in site
    assert "proxy_next_upstream_timeout 16s;" in site
    assert "proxy_next_upstream_tries 2;" in site
    assert "return 301 https://$host$request_uri;" in site  # the default port is not named
    assert "listen 443 ssl default_server;" in site


def check_uwsgi_derived(templates, facts):
    workers = facts["uwsgi_workers"]
    assert isinstance(workers, int) and 2 <= workers <= max(2, facts["processor_vcpus"])
    ini = templates["main.ini.j2"]
    assert f"processes = {workers}\n" in ini
    assert "harakiri = 45\n" in ini and "max-requests = 500\n" in ini and "listen = 100\n" in ini
    assert "post-buffering = 12582912\n" in ini  # 12 MB
    assert "reload-on-rss = 500\n" in ini
    high = min(workers * 500 + 256, int(facts["memtotal_mb"] * 0.8))
    assert f"MemoryHigh={high}M\n" in templates["main.service.j2"]
    assert f"MemoryMax={min((workers * 500 + 256) * 5 // 4, int(facts['memtotal_mb'] * 0.9))}M\n" in templates["main.service.j2"]
    assert "TimeoutStopSec=60\n" in templates["main.service.j2"]  # harakiri + 15
    assert "Backlog=100\n" in templates["main.socket.j2"]


def check_uwsgi_fixed(templates, facts):
    assert facts["uwsgi_workers"] == 7
    assert "processes = 7\n" in templates["main.ini.j2"]


def check_gunicorn_derived(templates, facts):
    workers = facts["gunicorn_worker_count"]
    assert isinstance(workers, int) and 2 <= workers <= max(2, facts["processor_vcpus"])
    conf, service = templates["gunicorn.conf.py.j2"], templates["gunicorn.service.j2"]
    for line in (f"workers = {workers}", "timeout = 45", "graceful_timeout = 40", "max_requests = 500",
                 "max_requests_jitter = 50", "backlog = 100", "limit_request_line = 4000",
                 "limit_request_field_size = 6000", "preload_app = True", "control_socket_disable = True"):
        assert line + "\n" in conf, line
    compile(conf, "gunicorn.conf.py", "exec")  # Python that Gunicorn can load
    high = min(workers * 500 + 256, int(facts["memtotal_mb"] * 0.8))
    assert f"MemoryHigh={high}M\n" in service
    assert f"MemoryMax={min((workers * 500 + 256) * 5 // 4, int(facts['memtotal_mb'] * 0.9))}M\n" in service
    assert "TimeoutStopSec=55\n" in service  # graceful_timeout + 15
    assert "Backlog=100\n" in templates["gunicorn.socket.j2"]


def check_gunicorn_fixed(templates, facts):
    assert facts["gunicorn_worker_count"] == 7
    assert "workers = 7\n" in templates["gunicorn.conf.py.j2"]


def check_nginx_gunicorn(templates, facts):
    site = site_of(templates)
    assert facts["nginx_match_in_flight"] == 15  # gunicorn_worker_count x 3
    assert "uwsgi_pass" not in site and "uwsgi_param" not in site
    # /healthz, /metrics, the pages and the match: each location sets every header itself.
    assert site.count("proxy_pass http://unix:/run/face_rec/gunicorn.sock:;") == 4
    assert site.count("proxy_set_header X-Forwarded-Proto $face_rec_scheme;") == 4
    assert site.count("proxy_read_timeout 8s;") == 1 and "proxy_set_header X-Face-Rec-Answer-Within-S 8;" in site
    assert "proxy_set_header X-Face-Rec-Passed-At $msec;" in site
    assert "proxy_max_temp_file_size 0;" in site


def check_dlib_derived(templates, facts):
    # Less memory than the threshold: swap when the host has less than the swap file's size.
    assert facts["dlib_needs_swap"] is (facts["swaptotal_mb"] < 1024)
    assert isinstance(facts["dlib_jobs"], int) and 1 <= facts["dlib_jobs"] <= facts["processor_vcpus"]
    # "false" is a true string: the key of a CUDA build ends in -cuda.
    assert facts["dlib_build_key"].endswith("-" + facts["dlib_baseline"])
    assert "set(USE_SSE2_INSTRUCTIONS ON" in templates["cpu_baseline.cmake.j2"]


def check_dlib_fixed(templates, facts):
    assert facts["dlib_jobs"] == 3
    assert facts["dlib_needs_swap"] is False  # more memory than the threshold
    assert not facts["dlib_build_key"].endswith("-cuda")


def check_dlib_cuda(templates, facts):
    assert facts["dlib_build_key"].endswith("-cuda")


def check_faceapp(templates, facts):
    settings = tomllib.loads(templates["face_rec.toml.j2"])
    got = {name: (value, type(value)) for name, value in settings.items() if not name.endswith("_dir")}
    assert got == {
        "max_upload_mb": (12, int),
        "min_face_percent": (5.0, float),  # "5" is a float option: 5.0, not the TOML integer 5
        "min_face_pixels": (30, int),
        "top_k": (4, int),
        "tolerance": (0.5, float),
        "decode_cpu_seconds": (2.0, float),  # "2" is a float option too
        "decode_memory_mb": (300, int),
    }


def check_exporters(templates, facts):
    assert "--web.listen-address=10.0.0.5:9101 " in templates["node-exporter.default.j2"]
    assert "--web.listen-address=10.0.0.5:9114\"" in templates["nginx-exporter.default.j2"]
    assert "HOST=10.0.0.5\nPORT=3904\n" in templates["mtail.default.j2"]


def check_exporters_everywhere(templates, facts):
    assert "--web.listen-address=:9100 " in templates["node-exporter.default.j2"]
    assert "HOST" not in templates["mtail.default.j2"]


def check_prometheus(templates, facts):
    config = yaml.safe_load(templates["prometheus.yml.j2"])
    assert config["global"] == {"scrape_interval": "20s", "evaluation_interval": "20s"}
    targets = {job["job_name"]: sorted(t for static in job["static_configs"] for t in static["targets"])
               for job in config["scrape_configs"]}
    assert targets["node"] == ["10.0.0.1:9101", "10.0.0.9:9101"]
    assert targets["nginx"] == ["10.0.0.1:9114", "10.0.0.9:9114"]
    assert targets["nginx_answers"] == ["10.0.0.1:3904", "10.0.0.9:3904"]
    assert targets["face_rec_app"] == ["10.0.0.1:8080"]


def check_face_rec(templates, facts):
    # One template, the app's sandbox (no variables): the shared values' other roles read them
    # (tests/test_shared_values.py passes them as strings to every role); here, the spec takes each string.
    assert list(templates) == ["app_sandbox.conf.j2"] and "SystemCallFilter=@system-service\n" in templates["app_sandbox.conf.j2"]
    assert facts["face_rec_request_timeout_s"] == "45" and facts["face_rec_mtail_port"] == "3904"


UPSTREAMS = [{"name": "app1", "address": "10.0.0.1"}, {"name": "app2", "address": "10.0.0.2", "port": 8080, "down": True}]
CASES = [
    Case("nginx-tls", "nginx", {
        "nginx_tls": "true", "nginx_tls_port": "8443", "nginx_match_max_in_flight": "1000",
        "nginx_listen_port": "8080", "nginx_client_max_body_size_mb": "12", "nginx_match_rate_per_s": "3",
        "nginx_match_burst": "7", "nginx_busy_retry_after_s": "4", "nginx_match_busy_after_s": "5",
        "nginx_worker_connections": "900", "nginx_hsts_max_age_s": "600", "nginx_status_port": "8082",
        "nginx_apt_lock_timeout_s": "300", "nginx_other_max_body_kb": "20", "nginx_page_rate_per_s": "21",
        "nginx_page_burst": "101", "nginx_client_max_in_flight": "33", "nginx_client_max_matches_in_flight": "3",
        "nginx_page_busy_after_s": "3", "nginx_healthz_busy_after_s": "1", "nginx_keepalive_timeout_s": "90",
    }, facts=("nginx_match_in_flight",), check=check_nginx_tls),
    Case("nginx-plain", "nginx", {
        "nginx_tls": "false", "nginx_match_max_in_flight": "0", "nginx_match_in_flight_per_worker": "4",
        "nginx_worker_connections": "1e3", "nginx_edge_tls": "false",
    }, facts=("nginx_match_in_flight",), check=check_nginx_plain),
    Case("nginx-workers", "nginx", {"nginx_app_workers": "5", "nginx_match_in_flight_per_worker": "3"},
         facts=("nginx_match_in_flight",), check=check_nginx_workers),
    Case("nginx-edge-tls", "nginx", {"nginx_edge_tls": "true", "nginx_tls": "false", "nginx_hsts_max_age_s": "700",
                                      "nginx_media_max_age_s": "300",
                                      "nginx_real_ip_header": "X-Forwarded-For"},
         data={"nginx_trusted_proxies": ["130.211.0.0/22", "198.51.100.7"]}, check=check_nginx_edge_tls),
    Case("nginx-balancer", "nginx", {
        "nginx_tls": "true", "nginx_tls_port": "443", "nginx_upstream_port": "81", "nginx_upstream_keepalive": "17",
        "nginx_upstream_connect_timeout_s": "4", "nginx_upstream_max_fails": "3", "nginx_upstream_fail_timeout_s": "11",
        "nginx_upstream_page_timeout_s": "4", "nginx_upstream_match_timeout_s": "7", "nginx_upstream_next_timeout_s": "16",
    }, data={"nginx_upstreams": UPSTREAMS}, check=check_nginx_balancer),
    Case("nginx-balancer-derived", "nginx", {"nginx_page_busy_after_s": "3", "nginx_match_busy_after_s": "5"},
         data={"nginx_upstreams": UPSTREAMS}, check=check_nginx_balancer_derived),
    Case("uwsgi-derived", "uwsgi", {
        "uwsgi_processes": "0", "uwsgi_harakiri_s": "45", "uwsgi_max_requests": "500", "uwsgi_listen_backlog": "100",
        "uwsgi_apt_lock_timeout_s": "300", "uwsgi_post_buffering_mb": "12", "uwsgi_reload_on_rss_mb": "500",
    }, facts=("uwsgi_workers",), check=check_uwsgi_derived),
    Case("uwsgi-fixed", "uwsgi", {"uwsgi_processes": "7"}, facts=("uwsgi_workers",), check=check_uwsgi_fixed),
    Case("gunicorn-derived", "gunicorn", {
        "gunicorn_workers": "0", "gunicorn_timeout_s": "45", "gunicorn_graceful_timeout_s": "40",
        "gunicorn_max_requests": "500", "gunicorn_max_requests_jitter": "50", "gunicorn_worker_memory_mb": "500",
        "gunicorn_backlog": "100", "gunicorn_limit_request_line": "4000", "gunicorn_limit_request_field_size": "6000",
    }, facts=("gunicorn_worker_count",), check=check_gunicorn_derived),
    Case("gunicorn-fixed", "gunicorn", {"gunicorn_workers": "7"}, facts=("gunicorn_worker_count",), check=check_gunicorn_fixed),
    Case("nginx-gunicorn", "nginx", {"nginx_app_server": "gunicorn", "gunicorn_worker_count": "5"},
         facts=("nginx_match_in_flight",), check=check_nginx_gunicorn),
    # native: the best baseline the controller has, so the role's CPU check passes on any CPU.
    Case("dlib-derived", "dlib", {
        "dlib_cpu_baseline": "native", "dlib_use_cuda": "false", "dlib_build_jobs": "0",
        "dlib_swap_below_mb": "1000000", "dlib_swap_size_mb": "1024", "dlib_build_timeout_s": "1800",
        "dlib_apt_lock_timeout_s": "300",
    }, facts=("dlib_jobs", "dlib_needs_swap", "dlib_build_key", "dlib_baseline"), check=check_dlib_derived),
    Case("dlib-fixed", "dlib", {
        "dlib_cpu_baseline": "native", "dlib_use_cuda": "false", "dlib_build_jobs": "3", "dlib_swap_below_mb": "1024",
    }, facts=("dlib_jobs", "dlib_needs_swap", "dlib_build_key"), check=check_dlib_fixed),
    # "true" must read as true: a CUDA build's key, or the role's refusal without nvcc.
    Case("dlib-cuda", "dlib", {"dlib_cpu_baseline": "native", "dlib_use_cuda": "true"},
         facts=("dlib_build_key",), check=check_dlib_cuda,
         fails=() if HAS_NVCC else ("dlib_use_cuda is true but this host has no nvcc",)),
    Case("faceapp", "faceapp", {
        "faceapp_max_upload_mb": "12", "faceapp_min_face_percent": "5", "faceapp_min_face_pixels": "30",
        "faceapp_top_k": "4", "faceapp_tolerance": "0.5", "faceapp_keep_releases": "2",
        "faceapp_apt_lock_timeout_s": "300", "faceapp_decode_cpu_seconds": "2", "faceapp_decode_memory_mb": "300",
    }, check=check_faceapp),
    Case("exporters", "exporters", {
        "exporters_node_port": "9101", "exporters_nginx_port": "9114", "exporters_mtail_port": "3904",
        "exporters_apt_lock_timeout_s": "300", "exporters_listen_address": "10.0.0.5", "exporters_nginx": "true",
    }, check=check_exporters),
    Case("exporters-every-interface", "exporters", {"exporters_nginx": "false"}, check=check_exporters_everywhere),
    Case("prometheus", "prometheus", {
        "prometheus_app_port": "8080", "prometheus_node_port": "9101", "prometheus_nginx_exporter_port": "9114",
        "prometheus_mtail_port": "3904", "prometheus_scrape_interval_s": "20", "prometheus_apt_lock_timeout_s": "300",
    }, data={"prometheus_app_hosts": [{"name": "app1", "address": "10.0.0.1"}],
             "prometheus_balancer_hosts": [{"name": "lb1", "address": "10.0.0.9"}]}, check=check_prometheus),
    Case("face_rec", "face_rec", {
        "face_rec_request_timeout_s": "45", "face_rec_max_upload_mb": "12", "face_rec_media_max_age_s": "300",
        "face_rec_nginx_status_port": "8082", "face_rec_node_exporter_port": "9101", "face_rec_nginx_exporter_port": "9114",
        "face_rec_mtail_port": "3904", "face_rec_apt_lock_timeout_s": "300", "face_rec_http_port": "8080",
        "face_rec_https_port": "8443", "face_rec_derived_workers": "3",
    }, facts=("face_rec_request_timeout_s", "face_rec_mtail_port"), check=check_face_rec),
    # Wrong types stop the play before anything is used, naming the variable and the type.
    Case("nginx-wrong-types", "nginx", {"nginx_match_max_in_flight": "lots", "nginx_tls": "maybe"}, valid=False, fails=(
        "argument 'nginx_match_max_in_flight' is of type str and we were unable to convert to int",
        "argument 'nginx_tls' is of type str and we were unable to convert to bool",
    )),
    # Valid types, but TLS cannot end both on the host and at the edge in front of it.
    Case("nginx-tls-twice", "nginx", {"nginx_tls": "true", "nginx_edge_tls": "true"}, valid=False, fails=(
        "nginx_tls and nginx_edge_tls are both true",
    )),
    # A certificate from an ACME CA is served over TLS, to a contact, for DNS names.
    Case("nginx-acme-without-tls", "nginx", {"nginx_tls": "false", "nginx_acme_email": "ops@example.com"},
         data={"nginx_acme_domains": ["app.example.com"]}, valid=False, fails=(
             "nginx_acme_domains needs nginx_tls: true, a contact nginx_acme_email, and DNS names",)),
    Case("nginx-acme-bad-name", "nginx", {"nginx_tls": "true", "nginx_acme_email": "ops@example.com"},
         data={"nginx_acme_domains": ["App.example.com/x"]}, valid=False, fails=("names ['App.example.com/x']",)),
    Case("face_rec-unknown-server", "face_rec", {"face_rec_wsgi_server": "apache"}, valid=False, fails=(
        "face_rec_wsgi_server must be one of: uwsgi, gunicorn",
    )),
    Case("faceapp-wrong-type", "faceapp", {"faceapp_tolerance": "close"}, valid=False, fails=(
        "argument 'faceapp_tolerance' is of type str and we were unable to convert to float",
    )),
]


def spec_options(role):
    path = ROOT / "roles" / role / "meta/argument_specs.yml"
    return yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]


def typed_options(role):
    return {name: option["type"] for name, option in spec_options(role).items() if option.get("type") in TYPED}


def run(case):
    """Run the case's play: its return code, the tasks that failed with their messages, and
    what the last task showed (the rendered templates and the facts) if it got there."""
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", str(PLAYBOOK),
               "-e", f"render_role={case.role}", "-e", json.dumps({"render_facts": list(case.facts), **case.data})]
    for name, value in case.strings.items():
        command += ["-e", f"{name}={value}"]
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.json", ANSIBLE_CACHE_PLUGIN="memory",
               ANSIBLE_NOCOLOR="1")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    try:
        output = json.loads(result.stdout)
    except json.JSONDecodeError:
        return result.returncode, [("ansible-playbook", result.stdout + result.stderr)], None
    tasks = [(task["task"]["name"], task["hosts"].get("localhost", {}))
             for play in output["plays"] for task in play["tasks"]]
    failed = [(name, host.get("msg", "")) for name, host in tasks if host.get("failed")]
    shown = [host["msg"] for name, host in tasks if name.startswith("Show every template")]
    return result.returncode, failed, shown[0] if shown else None


@pytest.fixture(scope="module")
def results():
    """Every case's play, run side by side (each is a few seconds of ansible-playbook)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return dict(zip((case.id for case in CASES), pool.map(run, CASES)))


@pytest.mark.parametrize("case", [case for case in CASES if not case.fails], ids=lambda case: case.id)
def test_string_values_render_as_numbers(case, results):
    returncode, failed, shown = results[case.id]
    assert returncode == 0 and not failed, f"the play failed: {failed}"
    templates = shown["templates"]
    assert set(templates) == {path.name for path in (ROOT / "roles" / case.role / "templates").glob("*.j2")}
    case.check(templates, shown["facts"])


@pytest.mark.parametrize("case", [case for case in CASES if case.fails], ids=lambda case: case.id)
def test_failures_name_the_variable(case, results):
    returncode, failed, shown = results[case.id]
    assert returncode != 0 and shown is None, "the play should have stopped"
    assert len(failed) == 1, failed
    for part in case.fails:
        assert part in failed[0][1]


@pytest.mark.parametrize("role", sorted(path.name for path in (ROOT / "roles").iterdir()))
def test_every_typed_variable_is_passed_as_a_string(role):
    """Each int, float and bool option of the role has a case above; each bool both ways."""
    passed = {}
    for case in CASES:
        if case.role == role and case.valid:
            for name, value in case.strings.items():
                passed.setdefault(name, set()).add(value)
    typed = typed_options(role)
    assert set(typed) <= set(passed), f"no case passes {sorted(set(typed) - set(passed))} as a string"
    for name, kind in typed.items():
        if kind == "bool":
            assert {"true", "false"} <= passed[name], f"{name} is passed as {passed[name]}, not both true and false"


# Jinja expressions in YAML: these keys hold bare expressions, every other value may hold {{ }}.
CONDITIONALS = {"when", "that", "failed_when", "changed_when", "until"}


def jinja_sources(path):
    """The Jinja source in a template, or in each string of a YAML file."""
    if path.suffix == ".j2":
        yield path.read_text()
        return

    def walk(node, key=None):
        if isinstance(node, dict):
            for child_key, child in node.items():
                yield from walk(child, child_key)
        elif isinstance(node, list):
            for child in node:
                yield from walk(child, key)
        elif isinstance(node, str):
            yield "{{ " + node + " }}" if key in CONDITIONALS and "{{" not in node else node

    yield from walk(yaml.safe_load(path.read_text()))


def unconverted(source, typed):
    """Names of typed variables in the source's expressions not followed by their filter."""
    tokens = [(kind, value) for _, kind, value in jinja2.Environment().lex(source) if kind != "whitespace"]
    found = []
    for index, (kind, value) in enumerate(tokens):
        if kind != "name" or value not in typed:
            continue
        rest = tokens[index + 1:]
        # `| default(...)` may come first (playbooks read role variables that may be unset).
        while rest[:2] == [("operator", "|"), ("name", "default")]:
            depth, rest = 0, rest[2:]
            for position, token in enumerate(rest):
                depth += token == ("operator", "(")
                depth -= token == ("operator", ")")
                if depth == 0:
                    rest = rest[position + 1:]
                    break
        if rest[:2] != [("operator", "|"), ("name", typed[value])]:
            found.append(value)
    return found


def test_typed_variables_are_converted_where_used():
    """Every reference to an int, float or bool role variable carries `| int`, `| float` or `| bool`.

    The plays above reach the templates and the computations; this reaches the rest (the dlib
    build, handlers, the on-call plays), where a string would fail or, worse, pass: "false" is
    true in a Jinja `if`, "443" == 443 is false.
    """
    typed = {name: kind for role in (ROOT / "roles").iterdir() for name, kind in typed_options(role.name).items()}
    files = [*sorted(ROOT.glob("roles/*/tasks/*.yml")), *sorted(ROOT.glob("roles/*/handlers/*.yml")),
             *sorted(ROOT.glob("roles/*/vars/*.yml")), *sorted(ROOT.glob("roles/*/templates/**/*.j2")),
             ROOT / "site.yml", *sorted(ROOT.glob("playbooks/**/*.yml"))]
    missing = []
    for path in files:
        relative = str(path.relative_to(ROOT))
        for source in jinja_sources(path):
            missing += [f"{relative}: {name} | {typed[name]}" for name in unconverted(source, typed)]
    assert not missing, "read without its filter:\n" + "\n".join(missing)


def client_key(conf, address):
    """What nginx.conf's $face_rec_client map gives for an address, read with Python's re (the
    map's regexes use nothing PCRE has and re lacks, but (?<name>) spelled (?P<name>))."""
    block = conf.partition("map $remote_addr $face_rec_client {")[2].partition("}")[0]
    for line in block.strip().splitlines():
        pattern, value = line.strip().rstrip(";").rsplit(" ", 1)
        if pattern == "default":
            return address
        found = re.search(pattern.strip('"')[1:].replace("(?<", "(?P<"), address)
        if found:
            return re.sub(r"\$(\w+)", lambda m: found.group(m.group(1)), value)
    raise AssertionError("the map has no default")


def test_an_ipv6_client_is_its_64(results):
    conf = results["nginx-plain"][2]["templates"]["nginx.conf.j2"]
    same = ["2001:db8:1:0::1", "2001:db8:1:0:ffff:1:2:3", "2001:db8:1::", "2001:db8:1:0:1::", "2001:db8:1:0:0:0:0:9"]
    keys = {client_key(conf, ipaddress.IPv6Address(a).compressed) for a in same}
    assert keys == {"2001:db8:1:0"}, keys
    others = ["2001:db8:1:1::1", "2001:db8::1", "2001:db8:2:0:1:2:3:4", "::1", "fe80::1:2:3:4", "2001:db8:0:1::5"]
    other_keys = [client_key(conf, ipaddress.IPv6Address(a).compressed) for a in others]
    assert len(set(other_keys)) == len(others) and "2001:db8:1:0" not in other_keys, other_keys
    assert client_key(conf, "203.0.113.7") == "203.0.113.7"
