"""Google's load balancer, played by our balancer host for one app host: the app host is
configured from the variables inventory/gcp.yml composes for a VM (through the inventory
plugin's own compose code), and the balancer host sends what Google's front ends send:
`X-Forwarded-For: <whatever the client sent>, <client>, <forwarding rule's address>` and
`X-Forwarded-Proto`. The app host must take the client's address from that (logs, rate limit),
send HSTS on what came over HTTPS and redirect what came over plain HTTP."""

import collections
import shlex

import pytest
import requests
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from ansible_collections.google.cloud.plugins.inventory.gcp_compute import InventoryModule
from conftest import APP_HOSTS, BALANCER, ROOT, address_of, play

testinfra_hosts = [f"ansible://{BALANCER}"]

# Documentation addresses (RFC 5737): the forwarding rule, two clients, and a forged value.
FORWARDING_RULE = "198.51.100.7"
CLIENTS = ("192.0.2.10", "192.0.2.20")
FORGED = "130.211.0.9"  # a Google front end's address, claimed by the client: never reached
EDGE_HOST = "face-rec.example"


def gcp_composed_vars():
    """What inventory/gcp.yml composes for an app VM that gce_vm.yml labelled with the
    forwarding rule's address, evaluated by the gcp_compute plugin's own code."""
    config = yaml.safe_load((ROOT / "inventory" / "gcp.yml").read_text())
    plugin = InventoryModule()
    plugin.loader = DataLoader()
    plugin.templar = Templar(loader=plugin.loader)
    vm = {"labels": {"face-rec": "app", "face-rec-fleet": "face-rec",
                     "face-rec-edge-address": FORWARDING_RULE.replace(".", "-")}}
    names = ("face_rec_extra_trusted_proxies", "nginx_real_ip_header", "nginx_edge_tls")
    return {name: plugin._compose(trust_as_template(config["compose"][name]), vm) for name in names}


@pytest.fixture(scope="module")
def edge_app(app_hosts):
    """The first app host as it would be behind Google's balancer; put back afterwards."""
    name = APP_HOSTS[0]
    composed = gcp_composed_vars()
    assert FORWARDING_RULE in composed["face_rec_extra_trusted_proxies"] and composed["nginx_edge_tls"] is True
    configured = play("site.yml", "--limit", name, "--tags", "nginx", extra_vars=composed)
    assert configured.returncode == 0, configured.stdout[-3000:]
    try:
        yield app_hosts[name]
    finally:
        restored = play("site.yml", "--limit", name, "--tags", "nginx")
        assert restored.returncode == 0, restored.stdout[-3000:]


def as_google(host, app, path, client, proto="https", method="GET", count=1):
    """Requests from the balancer host (our stand-in for Google's front end) to the app host,
    headers in Google's shape; the status line and headers of each answer."""
    headers = {"Host": EDGE_HOST, "X-Forwarded-For": f"{FORGED}, {client}, {FORWARDING_RULE}",
               "X-Forwarded-Proto": proto}
    flags = " ".join(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in headers.items())
    if method == "POST":
        flags += " -X POST -H 'Content-Type: image/jpeg' --data-binary 'not a photo'"
    url = f"http://{address_of(app)}{path}"
    out = host.check_output(
        f"for i in $(seq {count}); do curl -s -o /dev/null -D - {flags} {shlex.quote(url)}; echo '~~'; done")
    return [answer.strip() for answer in out.split("~~") if answer.strip()]


def status_of(answer):
    return int(answer.splitlines()[0].split()[1])


def header(answer, name):
    for line in answer.splitlines()[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def test_the_client_address_through_googles_balancer(host, edge_app, figures):
    with edge_app.sudo():
        edge_app.run_expect([0], "truncate -s 0 /var/log/nginx/access.log")
    # One client over its match rate, then the other: limited per client, not for everyone.
    first = [status_of(a) for a in as_google(host, edge_app, "/api/v1/match", CLIENTS[0], method="POST", count=20)]
    second = [status_of(a) for a in as_google(host, edge_app, "/api/v1/match", CLIENTS[1], method="POST", count=3)]
    figures["20 then 3 matches from two clients through Google's shape of X-Forwarded-For"] = {
        CLIENTS[0]: dict(collections.Counter(map(str, first))), CLIENTS[1]: dict(collections.Counter(map(str, second)))}
    assert first.count(429) >= 10 and 429 not in first[:5], first
    assert 429 not in second, second
    with edge_app.sudo():
        logged = collections.Counter(line.split()[0] for line in
                                     edge_app.check_output("cat /var/log/nginx/access.log").splitlines()
                                     if '"GET /metrics ' not in line)
    assert logged == {CLIENTS[0]: 20, CLIENTS[1]: 3}, logged


def test_hsts_over_https_and_plain_http_redirected(host, edge_app):
    over_https = as_google(host, edge_app, "/casts", CLIENTS[1])[0]
    assert status_of(over_https) == 200
    assert header(over_https, "Strict-Transport-Security") == "max-age=31536000"
    over_http = as_google(host, edge_app, "/casts?page=2", CLIENTS[1], proto="http")[0]
    assert status_of(over_http) == 301 and header(over_http, "Location") == f"https://{EDGE_HOST}/casts?page=2"
    # Google's health checks come from its front ends without the header: answered, no HSTS.
    health = host.check_output(f"curl -s -o /dev/null -D - http://{address_of(edge_app)}/healthz")
    assert status_of(health) == 200 and header(health, "Strict-Transport-Security") is None


def test_a_client_that_skips_the_balancer_claims_nothing(edge_app):
    # Straight to the app host (the firewall on GCE refuses this; here it shows nothing is believed).
    answer = requests.get(f"http://{address_of(edge_app)}/casts", timeout=10, allow_redirects=False,
                          headers={"X-Forwarded-For": f"{CLIENTS[0]}, {FORWARDING_RULE}", "X-Forwarded-Proto": "http"})
    assert answer.status_code == 200 and "Strict-Transport-Security" not in answer.headers
    answer = requests.get(f"http://{address_of(edge_app)}/casts", timeout=10,
                          headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in answer.headers
    with edge_app.sudo():
        last = edge_app.check_output("tail -n 1 /var/log/nginx/access.log").split()[0]
    assert last not in CLIENTS and last != FORWARDING_RULE

