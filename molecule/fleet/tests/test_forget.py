"""Forgetting a cast member under a steady load through the balancer: playbooks/forget.yml
removes them everywhere and proves it host by host; then their own photo matches no one of
theirs, their pages are gone, and no log on any host names them."""

import concurrent.futures
import shutil
import time

import requests
from conftest import APP_HOSTS, APP_ROOT, BALANCER, demo_cast_dir, load_figures, play, steady

testinfra_hosts = [f"ansible://{BALANCER}"]

CAST, MEMBER = "presidents", "biden"
THEIR_PATHS = [f"/casts/{CAST}/{MEMBER}", f"/media/{CAST}/{MEMBER}/biden.jpg", f"/thumbs/{CAST}/{MEMBER}/biden.jpg.webp"]
# Their page as other clients spell it; nginx logs the request line as it was sent.
SPELLINGS = ["/casts/pres%69dents/bid%65n", "//casts//presidents//biden", "/casts/./presidents/biden",
             "/CASTS/Presidents/BIDEN", "/casts/presidents%2Fbiden", "/casts/presidents/%2562iden"]


def test_forgetting_a_member_under_load(host, app_hosts, balancer_url, photos, tmp_path, figures):
    casts = tmp_path / "casts"
    shutil.copytree(demo_cast_dir(), casts)
    try:
        _forget_under_load(host, app_hosts, balancer_url, photos, casts, figures)
    finally:
        restored = play("site.yml", "--tags", "casts")  # the demo cast again, the member back
        assert restored.returncode == 0, restored.stdout[-3000:]


def _forget_under_load(host, app_hosts, balancer_url, photos, casts, figures):
    # Their pages, photo and thumbnail visited, and a miss (nginx's error log would name it).
    for path in THEIR_PATHS:
        assert requests.get(balancer_url + path, timeout=10).status_code == 200, path
    assert requests.get(balancer_url + f"/media/{CAST}/{MEMBER}/gone.jpg", timeout=10).status_code == 404
    media = requests.get(balancer_url + THEIR_PATHS[1], timeout=10)
    # Browsers use their copy 10 minutes at most, then ask again (404 once forgotten); no shared cache keeps one.
    assert media.headers["Cache-Control"] == "private, max-age=600, must-revalidate"
    # Over the page rate at the balancer: nginx's error log names the refused requests' path,
    # which the forget must scrub.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: requests.get(balancer_url + THEIR_PATHS[0], timeout=10).status_code, range(200)))
    assert 429 in codes
    # And in every other spelling, sent as is (curl --path-as-is) over the page rate: the
    # balancer's error log holds each as it was sent, which the forget must find.
    urls = "\n".join(f"{balancer_url}{path}" for path in SPELLINGS * 40)
    host.run_expect([0], f"printf '%s\\n' '{urls}' | xargs -P 16 -n 1 curl -s -o /dev/null --path-as-is")
    with host.sudo():
        errors = host.check_output("cat /var/log/nginx/error.log")
    assert f"/{CAST}/{MEMBER}" in errors
    assert [spelling for spelling in SPELLINGS if spelling in errors], errors[-2000:]
    for app in [*app_hosts.values(), host]:
        with app.sudo():
            assert f"/{CAST}/{MEMBER}" not in app.check_output("cat /var/log/nginx/access.log")
    time.sleep(6)  # the client's page bucket refills before the steady load
    with steady(balancer_url, photos) as load:
        forgot = play("playbooks/forget.yml", extra_vars={
            "cast": CAST, "member": MEMBER, "forget_confirm": f"{CAST}/{MEMBER}", "faceapp_casts_src": str(casts)})
    figures["forget a member under load"] = {"seconds": forgot.seconds, **load_figures(load)}
    assert forgot.returncode == 0, forgot.stdout[-4000:]
    assert load.failed == [], load.failed[:5]
    said = " ".join(forgot.stdout.split())
    for name in [*APP_HOSTS, BALANCER]:
        assert f"{CAST}/{MEMBER} forgotten on {name}: no file under" in said, name
    assert f"{CAST}/{MEMBER} forgotten on the controller" in said
    assert f"{CAST}/{MEMBER}'s own photo gives HTTP 200" in said
    assert not (casts / CAST / MEMBER).exists()

    # As a visitor sees it, through the balancer.
    answer = requests.post(balancer_url + f"/api/v1/match?cast={CAST}", data=(photos / "biden.jpg").read_bytes(),
                           headers={"Content-Type": "image/jpeg"}, timeout=60)
    assert answer.status_code == 200
    assert MEMBER not in {m["member"] for face in answer.json()["faces"] for m in face["matches"]}
    for path in THEIR_PATHS:
        assert requests.get(balancer_url + path, timeout=10).status_code == 404, path
    members = requests.get(balancer_url + f"/api/v1/casts/{CAST}", timeout=10).json()["members"]
    assert MEMBER not in {m["slug"] for m in members}
    # The 404s just now are logged without their slug too.
    for app in [*app_hosts.values(), host]:
        with app.sudo():
            logs = app.check_output("cat /var/log/nginx/*.log; journalctl -u main -u gunicorn -u nginx --no-pager -o cat")
        assert f"/{CAST}/{MEMBER}" not in logs
        assert not [spelling for spelling in SPELLINGS if spelling in logs], logs[-2000:]
        assert app.run(f"test -e {APP_ROOT}/shared/thumbs/{CAST}/{MEMBER}").rc == 1
