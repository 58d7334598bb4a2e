"""The fleet grown by a fresh host and shrunk again, under a steady load through the balancer,
as on call does it: the spare host is added to the inventory's face_rec group, grow.yml gives it
what the fleet serves and only then puts it behind the balancer; shrink.yml drains it, stops it
and takes it out of the balancers and Prometheus. No request may fail."""

import requests
import yaml
from conftest import (APP_HOSTS, APP_ROOT, BALANCER, app_copy, firing, load_figures, play, query, serving_release,
                      steady, host_by_name, wait_for)

testinfra_hosts = [f"ansible://{BALANCER}"]

SPARE = "face-rec-fleet-c"
ENCODINGS = f"{APP_ROOT}/shared/encodings/presidents.npz"
STRAY = f"{APP_ROOT}/shared/casts/presidents/stray"
# The encodings' rows, whatever their order (np.savez stamps its zip entries with the time they
# were written, and a cast encoded again may list its rows in another order), and the members.
ENCODED = (f"{APP_ROOT}/venv/bin/python -c \"import hashlib, numpy; d = numpy.load('{ENCODINGS}'); "
           "rows = sorted(zip(d['members'].tolist(), d['photos'].tolist(), (e.tobytes() for e in d['encodings']))); "
           "print(hashlib.sha256(repr(rows).encode()).hexdigest(), sorted(set(d['members'].tolist())))\"")
ENCODE = (f"sudo -u face_rec env PYTHONPATH={APP_ROOT}/current/lib FACE_REC_CONFIG=/etc/face_rec/face_rec.toml "
          f"{APP_ROOT}/venv/bin/python -m face_rec.create_encodings --quiet")


def test_growing_and_shrinking_the_fleet_under_load(host, app_hosts, balancer_url, photos, tmp_path, figures):
    # On call puts the new VM in the inventory's face_rec group, beside the scenario's.
    grown_inventory = tmp_path / "grown.yml"
    grown_inventory.write_text(yaml.safe_dump({"face_rec": {"hosts": {SPARE: {}}}}))
    spare = host_by_name(SPARE)
    serving = serving_release(app_hosts[APP_HOSTS[0]])
    # app/ as it is now, changed: grow.yml must give the new host the fleet's release, not this.
    changed = app_copy(tmp_path, "app", lambda src: (src / "templates/base.html").write_text(
        (src / "templates/base.html").read_text() + "\n{# not the serving release #}\n"))

    # The serving host grow.yml copies from missed a forget: it still has a member the controller
    # no longer has, photo and encodings. The new host must get nothing of them.
    source = app_hosts[APP_HOSTS[0]]
    with source.sudo():
        source.run_expect([0], f"install -d -o face_rec -g face_rec {STRAY} && install -o face_rec -g face_rec -m 0644 "
                               f"{APP_ROOT}/shared/casts/presidents/obama/obama.jpg {STRAY}/ && {ENCODE}")
        assert "'stray'" in source.check_output(ENCODED)

    with steady(balancer_url, photos, seconds=900) as load:
        try:
            grown = play("playbooks/grow.yml", "-i", str(grown_inventory),
                         extra_vars={"grow_hosts": SPARE, "faceapp_src": str(changed)})
        finally:
            with source.sudo():
                source.run_expect([0], f"rm -rf {STRAY} && {ENCODE}")
        assert grown.returncode == 0, grown.stdout[-4000:]
        # What the new host holds while it serves (shrink.yml removes it): nothing of the member the
        # controller no longer has, and the same encodings as every serving host.
        encoded = {}
        for name, app in [*app_hosts.items(), (SPARE, spare)]:
            with app.sudo():
                encoded[name] = app.check_output(ENCODED)
        with spare.sudo():
            strays = spare.check_output(f"find {APP_ROOT}/shared -name stray")
        served_by_spare = _visitor_requests_after_the_smoke_test(spare, balancer_url)
        wait_for(lambda: query(host, f'up{{instance="{SPARE}",job="face_rec_app"}}').get(SPARE) == 1, 60,
                 "Prometheus scraping the new host")
        shrunk = play("playbooks/shrink.yml", "-i", str(grown_inventory), extra_vars={"shrink_hosts": SPARE})
        load.stop()
    figures["grow by a fresh host, then shrink"] = {
        "fresh host to serving s (grow.yml)": grown.seconds, "shrink.yml s": shrunk.seconds,
        "visitor requests the new host answered before it left": served_by_spare, **load_figures(load)}
    assert shrunk.returncode == 0, shrunk.stdout[-4000:]
    assert load.failed == [], load.failed[:5]

    # Grown: the fleet's release from the controller's store, its encodings copied (nothing
    # encoded) and found in line with the controller's casts, dlib from the cache.
    assert serving_release(spare) == serving
    said = " ".join(grown.stdout.split())
    assert "Check that the controller keeps the releases the fleet serves" in said
    assert "Fetch the serving host's casts" not in said
    # Its complete releases as the serving host keeps them, newest first (from the controller's
    # store): a rollback goes back alike.
    releases = (f"ls -1t {APP_ROOT}/releases | while read -r r; do "
                f"if [ -e {APP_ROOT}/releases/$r/.complete ]; then echo $r; fi; done")
    assert spare.check_output(releases) == app_hosts[APP_HOSTS[0]].check_output(releases)
    # Nothing of the member the controller no longer has: no photo, no encoding, no thumbnail;
    # the same encodings as every serving host, none of them computed again.
    assert len(set(encoded.values())) == 1 and "'stray'" not in encoded[SPARE], encoded
    assert strays == "", strays
    built = grown.stdout.split("Build the casts' encodings")[1].split("TASK")[0]
    assert "changed:" not in built and "ok:" not in built, built
    aligned = grown.stdout.split("Bring the copied encodings in line with the casts")[1].split("TASK")[0]
    assert f"changed: [{SPARE}]" in aligned, aligned
    assert not spare.package("cmake").is_installed  # dlib came from the wheel cache: nothing compiled it

    # Shrunk: out of every upstream list and Prometheus' targets, its services stopped.
    with host.sudo():
        assert SPARE not in host.file("/etc/nginx/face_rec_upstream.conf").content_string
    with spare.sudo():
        for unit in ("main.socket", "main", "nginx", "prometheus-node-exporter"):
            assert not spare.service(unit).is_running and not spare.service(unit).is_enabled, unit
        # Nothing of any member left on it: no photo, encoding or thumbnail, no nginx log.
        for folder in ("casts", "encodings", "thumbs"):
            assert not spare.file(f"{APP_ROOT}/shared/{folder}").exists, folder
        assert spare.check_output("find /var/log/nginx -type f") == ""
    wait_for(lambda: SPARE not in query(host, "up"), 60, "Prometheus no longer scraping the host")
    assert not {alert for alert in firing(host) if alert[1] == SPARE}
    # The scenario's own inventory (without the spare host) describes the fleet again.
    status = play("playbooks/status.yml")
    assert status.returncode == 0, status.stdout[-3000:]
    assert status.stdout.split("balancer view")[-1].count("in service, /healthz 200") == len(APP_HOSTS)


def _visitor_requests_after_the_smoke_test(spare, balancer_url):
    """The new host's access log: its smoke match (from itself) came before any visitor's request
    through the balancer, and it answers its share of them now. How many visitor requests it got."""
    for _ in range(20):
        assert requests.get(balancer_url + "/casts", timeout=10).status_code == 200
    with spare.sudo():
        lines = spare.check_output("cat /var/log/nginx/access.log").splitlines()
    smoke = next(i for i, line in enumerate(lines) if line.startswith("127.0.0.1 ") and "POST /api/v1/match" in line)
    visitors = [i for i, line in enumerate(lines)
                if not line.startswith("127.0.0.1 ") and '"GET /metrics ' not in line]
    assert visitors and smoke < visitors[0], lines[:20]
    return len(visitors)
