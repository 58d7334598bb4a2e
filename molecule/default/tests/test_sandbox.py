"""Both services sandboxed by systemd, scored as on call would check them."""

import re

from conftest import figures_of


def _exposure(host, unit):
    with host.sudo():
        report = host.check_output(f"systemd-analyze security --no-pager {unit}")
    return float(re.search(r"Overall exposure level for \S+: ([\d.]+)", report).group(1))


def test_services_are_sandboxed(host, server):
    app = f"{server.unit}.service"
    scores = {unit: _exposure(host, unit) for unit in (app, "nginx.service")}
    figures_of(host)["systemd-analyze security"] = scores
    print(f"\nsystemd-analyze security: {scores}")
    assert scores[app] <= 1.0 and scores["nginx.service"] <= 3.0


def test_no_process_that_holds_photos_can_dump_core(host, server):
    """The app's workers (uWSGI's or Gunicorn's), their decode processes and nginx's workers hold photos of faces: a crash
    leaves no core file with one in it (LimitCORE=0, as the running processes see it)."""
    with host.sudo():
        for unit in (server.unit, "nginx"):
            assert host.check_output(f"systemctl show -p LimitCORE --value {unit}") == "0", unit
            pid = host.check_output(f"systemctl show -p MainPID --value {unit}")
            assert re.search(r"Max core file size\s+0\s+0", host.check_output(f"cat /proc/{pid}/limits")), unit
