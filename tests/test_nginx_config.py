"""roles/nginx's templates, rendered on the controller, pass `nginx -t`: the app host's site, the
balancer's, with TLS, with basic auth, with TLS at the edge. Seconds, instead of the default
scenario's minutes on a test host.

Each variant is rendered by tests/role_variables/render.yml (the role's defaults, its argument
spec, its computations), laid out as the role lays it out under /etc/nginx but in a folder of
the test's own (every absolute path rewritten into it: nothing is read from or written to the
real /etc/nginx, /var/log/nginx or /run), and checked with this machine's nginx (Debian's, from
scripts/bootstrap.sh) as `nginx -t -p <folder> -c <folder>/nginx.conf`, which starts no server.
"""

import concurrent.futures
import os
import pathlib
import shutil
import subprocess

import pytest
import yaml

from tests.test_role_variables import ROOT, Case, run

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
UPSTREAMS = [{"name": "app1", "address": "10.0.0.1"}, {"name": "app2", "address": "10.0.0.2", "port": 8080, "down": True}]
VARIANTS = [
    Case("app", "nginx", {},
         data={"nginx_trusted_proxies": ["10.0.0.9"], "nginx_metrics_allow": ["10.0.0.8", "2001:db8::/64"]}),
    Case("app-tls", "nginx", {"nginx_tls": "true", "nginx_tls_port": "8443"}),
    Case("app-basic-auth", "nginx", {"nginx_basic_auth_user": "ops", "nginx_basic_auth_password": "secret"}),
    Case("app-edge-tls", "nginx", {"nginx_edge_tls": "true", "nginx_real_ip_header": "X-Forwarded-For",
},
         data={"nginx_trusted_proxies": ["130.211.0.0/22", "35.191.0.0/16"]}),
    # Before its first certificate an ACME host serves plain HTTP and the CA's challenge.
    Case("app-acme", "nginx", {"nginx_tls": "true", "nginx_acme_email": "ops@example.com"},
         data={"nginx_acme_domains": ["app.example.com"]}),
    Case("balancer", "nginx", {}, data={"nginx_upstreams": UPSTREAMS}),
    Case("balancer-tls-basic-auth", "nginx", {"nginx_tls": "true", "nginx_basic_auth_user": "ops",
                                              "nginx_basic_auth_password": "secret"},
         data={"nginx_upstreams": UPSTREAMS}),
]


def deployed_files(templates, balancer):
    """The files roles/nginx/tasks/config.yml writes, by their path under /etc/nginx, from the
    rendered templates (by template name)."""
    files = {
        "nginx.conf": templates["nginx.conf.j2"],
        "uwsgi_params": templates["uwsgi_params.j2"],
        "face_rec_security_headers.conf": templates["security_headers.conf.j2"],
        "conf.d/face_rec_status.conf": templates["stub_status.conf.j2"],
        "sites-available/face_rec": templates["site_balancer.conf.j2" if balancer else "site_app.conf.j2"],
    }
    if balancer:
        files["face_rec_upstream.conf"] = templates["upstream.conf.j2"]
    return files


def lay_out(files, prefix):
    """Write the files under prefix as they are under /etc/nginx, every absolute path of nginx's
    own rewritten into prefix, with what the role would find there (a certificate, a password
    file, mime.types). Returns the nginx.conf to check."""
    prefix = pathlib.Path(prefix)
    for folder in ("conf.d", "sites-available", "sites-enabled", "modules-enabled", "tls", "log", "temp"):
        (prefix / folder).mkdir(parents=True, exist_ok=True)

    def rewrite(text):
        return (text.replace("/etc/nginx/", f"{prefix}/").replace("/var/log/nginx/", f"{prefix}/log/")
                .replace("/run/nginx.pid", f"{prefix}/nginx.pid"))

    for name, text in files.items():
        text = rewrite(text)
        if name == "nginx.conf":
            # nginx's temp folders, here instead of /var/lib/nginx; the worker user only as root.
            temp = "".join(f"    {kind}_temp_path {prefix}/temp/{kind};\n"
                           for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            text = text.replace("http {\n", "http {\n" + temp, 1)
            if os.geteuid() != 0:
                text = text.replace("user www-data;\n", "")
        (prefix / name).write_text(text)
    (prefix / "sites-enabled/face_rec").symlink_to(prefix / "sites-available/face_rec")
    (prefix / "mime.types").write_text("types {\n    text/html html;\n    image/jpeg jpg jpeg;\n}\n")
    (prefix / "face_rec.htpasswd").write_text("ops:$6$salt$hash\n")
    # The self-signed certificate tasks/tls.yml makes.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(prefix / "tls/face_rec.key"), "-out", str(prefix / "tls/face_rec.crt")],
                   capture_output=True, check=True, timeout=60)
    return prefix / "nginx.conf"


def nginx_test(conf):
    prefix = conf.parent
    return subprocess.run([NGINX, "-t", "-q", "-p", f"{prefix}/", "-c", str(conf), "-e", str(prefix / "log/error.log")],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def rendered():
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(VARIANTS)) as pool:
        return dict(zip((case.id for case in VARIANTS), pool.map(run, VARIANTS)))


@pytest.mark.skipif(not NGINX, reason="no nginx on this machine (scripts/bootstrap.sh installs nginx-light)")
@pytest.mark.parametrize("case", VARIANTS, ids=lambda case: case.id)
def test_rendered_configuration_passes_nginx_t(case, rendered, tmp_path):
    returncode, failed, shown = rendered[case.id]
    assert returncode == 0 and not failed, f"the play failed: {failed}"
    balancer = bool(case.data.get("nginx_upstreams"))
    files = deployed_files(shown["templates"], balancer)
    result = nginx_test(lay_out(files, tmp_path / "nginx"))
    assert result.returncode == 0, result.stderr
    # -q prints warnings and errors only: a warning (a conflicting server name, a duplicate
    # header...) is a mistake in the templates too.
    assert not result.stderr.strip(), result.stderr
    # Every security header reaches each location that adds one of its own, through the include.
    headers = files["face_rec_security_headers.conf"]
    listed = yaml.safe_load((ROOT / "roles/nginx/defaults/main.yml").read_text())["nginx_security_headers"]
    # HSTS where HTTPS is served: not by an ACME host still waiting for its first certificate.
    acme = bool(case.data.get("nginx_acme_domains"))
    hsts = bool((case.strings.get("nginx_tls") and not acme) or case.strings.get("nginx_edge_tls"))
    assert sum(line.startswith("add_header ") for line in headers.splitlines()) == len(listed) + hsts
    site = files["sites-available/face_rec"]
    if acme:
        assert "ssl" not in site and "location /.well-known/acme-challenge/ {\n        root /var/www/html;" in site
    assert site.count("include /etc/nginx/face_rec_security_headers.conf;") == (1 if balancer else 4)
    assert "add_header Content-Security-Policy" not in site


def test_every_template_fits_on_a_screen(repo_root):
    """No template of roles/nginx over 80 lines: one job per file."""
    long = {str(path.relative_to(repo_root)): len(path.read_text().splitlines())
            for path in (repo_root / "roles/nginx/templates").rglob("*.j2")}
    assert all(lines <= 80 for lines in long.values()), long
