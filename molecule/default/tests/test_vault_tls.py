"""TLS and basic auth from the scenario's vaulted variables, on the live host (the last of the
scenario's tests to change the configuration: the session's end puts the defaults back)."""

import socket
import ssl

import requests
import urllib3
import yaml
from ansible.constants import DEFAULT_VAULT_ID_MATCH
from ansible.parsing.vault import VaultLib, VaultSecret
from conftest import ROOT, converge, converged

VAULT = ROOT / "molecule" / "default" / "vault"


def _vaulted(path, password_file):
    """The scenario's vaulted variables, decrypted with its test vault password."""
    vault = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password_file.read_bytes().strip()))])
    loader = type("VaultLoader", (yaml.SafeLoader,), {})
    loader.add_constructor("!vault", lambda load, node: vault.decrypt(load.construct_scalar(node)).decode())
    return yaml.load(path.read_text(), Loader=loader)  # noqa: S506 (SafeLoader plus !vault)


def test_tls_and_basic_auth_from_vault(host, address, photos, lifted):
    password_file, tls_vars = VAULT / "password.txt", VAULT / "tls_auth.yml"
    secrets = _vaulted(tls_vars, password_file)
    user, password = secrets["nginx_basic_auth_user"], secrets["nginx_basic_auth_password"]
    result = converged(converge(host, "-v", "--vault-password-file", str(password_file), "-e", f"@{tls_vars}"))
    assert password not in result.stdout + result.stderr

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    https, http = f"https://{address}", f"http://{address}"
    served = ssl.get_server_certificate((address, 443))
    with host.sudo():
        assert served.strip() == host.file("/etc/nginx/tls/face_rec.crt").content_string.strip()

    assert requests.get(https + "/", verify=False, timeout=10).status_code == 401
    assert requests.get(https + "/", auth=(user, "wrong"), verify=False, timeout=10).status_code == 401
    home = requests.get(https + "/", auth=(user, password), verify=False, timeout=10)
    assert home.status_code == 200 and home.headers["Strict-Transport-Security"] == "max-age=31536000"
    with open(photos / "obama2.jpg", "rb") as photo:
        match = requests.post(https + "/api/v1/match", files={"image": photo}, auth=(user, password),
                              verify=False, timeout=60)
    assert match.json()["faces"][0]["matches"][0]["member"] == "obama"

    redirect = requests.get(http + "/casts?x=1", allow_redirects=False, timeout=10)
    assert redirect.status_code == 301 and redirect.headers["Location"] == f"{https}/casts?x=1"
    # Health checks speak plain HTTP and carry no credentials.
    assert requests.get(http + "/healthz", timeout=10).status_code == 200
    assert requests.get(https + "/healthz", verify=False, timeout=10).status_code == 200

    # The TLS 1.2 suites the host accepts, tried one by one from every suite this client knows:
    # Mozilla's intermediate ones for an RSA certificate, and no CBC, SHA-1 or static-RSA suite.
    assert _accepted_tls12_suites(address) == {"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                                               "ECDHE-RSA-CHACHA20-POLY1305"}
    tls13 = ssl.create_default_context()
    tls13.check_hostname, tls13.verify_mode = False, ssl.CERT_NONE
    tls13.minimum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection((address, 443), timeout=10) as raw, tls13.wrap_socket(raw) as tls:
        assert tls.version() == "TLSv1.3"


def _accepted_tls12_suites(address):
    every = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    every.set_ciphers("ALL:@SECLEVEL=0")
    names = {c["name"] for c in every.get_ciphers() if c["protocol"] != "TLSv1.3"}
    accepted = set()
    for name in sorted(names):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(f"{name}:@SECLEVEL=0")
        try:
            with socket.create_connection((address, 443), timeout=10) as raw, context.wrap_socket(raw) as tls:
                accepted.add(tls.cipher()[0])
        except (ssl.SSLError, ConnectionResetError):
            pass
    return accepted
