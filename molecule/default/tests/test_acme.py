"""HTTPS with a certificate that gets and renews itself (nginx_acme_*), proved end to end against
a real ACME server: Debian's Pebble (Let's Encrypt's test CA) and pebble-challtestsrv (its DNS),
started on the Debian 12 host by this test, with a CA for Pebble's own HTTPS made here. The host
gets its certificate by HTTP-01 through its own nginx, serves it with HSTS, asks Pebble for
nothing on a re-run, renews under the steady load with no failed request, and a name that does
not resolve stops the play with the CA's reason while the site keeps its certificate."""

import re
import time

import requests
import urllib3
from conftest import converge, converged, figures_of, steady_load

testinfra_hosts = ["ansible://face-rec-default"]

NAME, BAD_NAME = "face-rec.test", "nope.test"
HERE = "/etc/face_rec-pebble"  # Pebble's files on the host: its config, its HTTPS certificate
# Pebble's HTTPS certificate (its directory and management API), from a CA made for this run.
MAKE_PEBBLE_TLS = f"""
set -e
mkdir -p {HERE} && cd {HERE}
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=pebble-test-ca -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout key.pem -out cert.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext
openssl x509 -req -in cert.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out cert.pem 2>/dev/null
cat > pebble.json <<'JSON'
{{"pebble": {{"listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
  "certificate": "{HERE}/cert.pem", "privateKey": "{HERE}/key.pem", "httpPort": 80, "tlsPort": 443,
  "ocspResponderURL": "", "externalAccountBindingRequired": false}}}}
JSON
"""
START = f"""
set -e
systemd-run --unit=face-rec-challtestsrv /usr/bin/pebble-challtestsrv -defaultIPv4 '' -defaultIPv6 '' \
  -dns01 127.0.0.1:8053 -http01 '' -https01 '' -tlsalpn01 '' -management 127.0.0.1:8055
systemd-run --unit=face-rec-pebble --setenv=PEBBLE_VA_NOSLEEP=1 --setenv=PEBBLE_WFE_NONCEREJECT=0 \
  /usr/bin/pebble -config {HERE}/pebble.json -dnsserver 127.0.0.1:8053
for _ in $(seq 50); do curl -sf --cacert {HERE}/ca.pem https://localhost:14000/dir >/dev/null && break; sleep 0.2; done
curl -sf -X POST -d '{{"host": "{NAME}.", "addresses": ["127.0.0.1"]}}' http://127.0.0.1:8055/add-a
"""
STOP = f"""
systemctl stop face-rec-pebble face-rec-challtestsrv 2>/dev/null
systemctl reset-failed face-rec-pebble face-rec-challtestsrv 2>/dev/null
systemctl disable --now certbot.timer 2>/dev/null
rm -rf {HERE} /etc/letsencrypt /etc/systemd/system/certbot.service.d/face_rec.conf
systemctl daemon-reload
true
"""
ACME = {"nginx_tls": True, "nginx_acme_domains": [NAME], "nginx_acme_email": "ops@face-rec.test",
        "nginx_acme_directory": "https://localhost:14000/dir", "nginx_acme_ca_bundle": f"{HERE}/ca.pem"}


def _served(host, root):
    """The certificate nginx serves for NAME: (serial, whether it verifies against Pebble's root
    for that name, the whole s_client report)."""
    report = host.check_output(
        f"echo | openssl s_client -connect 127.0.0.1:443 -servername {NAME} -verify_hostname {NAME} "
        f"-CAfile {root} -verify_return_error -showcerts 2>&1")
    serial = host.check_output(
        f"echo | openssl s_client -connect 127.0.0.1:443 -servername {NAME} 2>/dev/null | openssl x509 -noout -serial")
    return serial, "Verify return code: 0 (ok)" in report, report


def test_a_certificate_from_an_acme_ca_served_renewed_and_kept_on_a_bad_name(host, address, photos):
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    figures = figures_of(host).setdefault("acme", {})
    with host.sudo():
        host.run_expect([0], "DEBIAN_FRONTEND=noninteractive apt-get install -y -q pebble >/dev/null")
        host.run_expect([0], MAKE_PEBBLE_TLS)
        host.run_expect([0], START)
    try:
        # Issuance: plain HTTP until the certificate comes, then HTTPS with it.
        started = time.monotonic()
        first = converged(converge(host, extra_vars=ACME))
        figures["first run s"] = round(time.monotonic() - started, 1)
        assert "Get the certificate by HTTP-01" in first.stdout
        with host.sudo():
            host.run_expect([0], f"curl -sf --cacert {HERE}/ca.pem https://localhost:15000/roots/0 > {HERE}/root.pem")
            serial, verified, report = _served(host, f"{HERE}/root.pem")
            assert verified, report[-3000:]
            assert host.file("/etc/letsencrypt/renewal-hooks/deploy/face_rec-reload-nginx").is_file
            assert host.service("certbot.timer").is_enabled
            # The timer's renewals trust the CA bundle, as the role's runs do.
            assert f"REQUESTS_CA_BUNDLE={HERE}/ca.pem" in host.check_output("systemctl show -p Environment certbot.service")
        home = requests.get(f"https://{address}/", verify=False, timeout=10)
        assert home.status_code == 200 and home.headers["Strict-Transport-Security"] == "max-age=31536000"
        redirect = requests.get(f"http://{address}/casts", allow_redirects=False, timeout=10)
        assert redirect.status_code == 301 and redirect.headers["Location"] == f"https://{address}/casts"

        # A re-run changes nothing and asks Pebble for nothing: certbot is not run, and Pebble's
        # log shows no request of any kind meanwhile.
        asked = f"journalctl -u face-rec-pebble --no-pager -o cat | grep -c ' -> calling handler()' || true"
        with host.sudo():
            requests_before = int(host.check_output(asked))
        again = converged(converge(host, extra_vars=ACME))
        with host.sudo():
            requests_after = int(host.check_output(asked))
        assert re.search(r"face-rec-default\s+:\s+ok=\d+\s+changed=0\b", again.stdout), again.stdout[-3000:]
        certbot_task = again.stdout.split("TASK [nginx : Get the certificate by HTTP-01]")[1].split("TASK [")[0]
        assert "skipping: [face-rec-default]" in certbot_task and "changed" not in certbot_task, certbot_task
        assert requests_before > 0 and requests_after == requests_before, (requests_before, requests_after)
        figures["ACME requests to Pebble: issuance, re-run"] = [requests_before, requests_after - requests_before]

        # Renewal as certbot's timer does it, forced, under the steady load over HTTPS.
        # Within the per-client limits of one address (the role's defaults, not lifted here).
        with steady_load.SteadyLoad(f"https://{address}", clients=2, seconds=120, max_requests=3000, verify=False,
                                    photo=photos / "obama2.jpg", cast="presidents", pause=0.3) as load:
            time.sleep(3)
            with host.sudo():
                renewed = host.run(f"REQUESTS_CA_BUNDLE={HERE}/ca.pem certbot renew --force-renewal "
                                   "--no-random-sleep-on-renew")
            time.sleep(3)
        figures["forced renewal under load"] = load.summary()
        assert renewed.rc == 0, renewed.stdout[-2000:] + renewed.stderr[-2000:]
        assert load.failed == [], load.failed[:5]
        with host.sudo():
            new_serial, verified, report = _served(host, f"{HERE}/root.pem")
        assert verified and new_serial != serial, (serial, new_serial, report[-2000:])

        # A name that does not resolve: the play stops naming it and the CA's reason; the site
        # keeps serving the certificate it had.
        bad = converge(host, extra_vars={**ACME, "nginx_acme_domains": [NAME, BAD_NAME]})
        said = " ".join(bad.stdout.split())
        assert bad.returncode != 0
        assert f"No certificate for {NAME}, {BAD_NAME} from https://localhost:14000/dir" in said, said[-3000:]
        assert BAD_NAME in said.split("from https://localhost:14000/dir:")[1], said[-3000:]
        with host.sudo():
            kept_serial, verified, _ = _served(host, f"{HERE}/root.pem")
        assert verified and kept_serial == new_serial
        assert requests.get(f"https://{address}/healthz", verify=False, timeout=10).json()["status"] == "ok"
    finally:
        with host.sudo():
            host.run(STOP)
        converged(converge(host))  # plain HTTP again, as the scenario's other tests expect
