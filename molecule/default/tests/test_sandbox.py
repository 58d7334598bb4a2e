"""Both services sandboxed by systemd, scored as on call would check them."""

import re

from conftest import figures_of


def _exposure(host, unit):
    with host.sudo():
        report = host.check_output(f"systemd-analyze security --no-pager {unit}")
    return float(re.search(r"Overall exposure level for \S+: ([\d.]+)", report).group(1))


def test_services_are_sandboxed(host):
    scores = {unit: _exposure(host, unit) for unit in ("main.service", "nginx.service")}
    figures_of(host)["systemd-analyze security"] = scores
    print(f"\nsystemd-analyze security: {scores}")
    assert scores["main.service"] <= 1.0 and scores["nginx.service"] <= 3.0
