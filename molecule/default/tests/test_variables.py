"""nginx variables changed on the live host with site.yml --tags nginx -e ..., and a broken
value refused with the old configuration serving."""

import requests
from conftest import converge


def test_nginx_conf_and_site_variables_change_on_a_live_host(host, base_url, lifted):
    nginx_conf = host.file("/etc/nginx/nginx.conf").content_string
    site = host.file("/etc/nginx/sites-available/face_rec").content_string
    assert "rate=1000r/s" in nginx_conf and "burst=1000 nodelay" in site

    def post(_):
        return requests.post(base_url + "/api/v1/match", files={"image": ("x.jpg", b"junk")}, timeout=30).status_code
    statuses = [post(n) for n in range(12)]
    assert set(statuses) == {415}, statuses  # 12 at once: over the default burst, no 429 now


def test_broken_value_leaves_the_old_configuration_serving(host, base_url, lifted):
    before = host.file("/etc/nginx/sites-available/face_rec").content_string
    result = converge(host, extra_vars={**lifted, "nginx_tls": True,
                                        "nginx_tls_certificate": "/etc/nginx/tls/missing.crt",
                                        "nginx_tls_certificate_key": "/etc/nginx/tls/missing.key"})
    output = result.stdout + result.stderr  # failures go to stderr under some callbacks
    assert result.returncode != 0
    assert "nginx refused the new configuration" in output and "missing.crt" in output
    assert host.file("/etc/nginx/sites-available/face_rec").content_string == before
    with host.sudo():
        assert host.run("nginx -t").rc == 0
        assert not host.run("ls /etc/nginx/sites-available/ | grep '~$'").stdout
    assert requests.get(base_url + "/casts", timeout=10).status_code == 200
