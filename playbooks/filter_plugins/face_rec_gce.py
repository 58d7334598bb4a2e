"""What the GCE plays make of Compute Engine's answers (the answers themselves come from the
google.cloud modules and library/face_rec_gce_fleet_info.py); tested with answers in the exact
shape of Compute's v1 API (tests/test_gce_rehearsal.py).

    {{ health | face_rec_gce_health_states }}   -> {'face-rec-1': 'HEALTHY', 'face-rec-2': 'UNHEALTHY'}
    {{ members | face_rec_gce_names }}          -> ['face-rec-1']
    {{ vms | face_rec_gce_joining(members) }}   -> the app VMs neither in the group nor kept out
    {{ members | face_rec_gce_members(['face-rec-2'], [link_of_3]) }}  -> the group without 2, with 3

A VM's name is the last part of its selfLink. getHealth lists a VM once per port it serves;
a VM with any port not HEALTHY counts as its worst state.
"""

STATE_ORDER = ["HEALTHY", "DRAINING", "UNKNOWN", "TIMEOUT", "UNHEALTHY"]


def _name(link):
    return str(link).rstrip("/").rsplit("/", 1)[-1]


def face_rec_gce_names(links):
    return [_name(link) for link in links or []]


def face_rec_gce_health_states(health_status):
    """{VM name: healthState} from getHealth's healthStatus list."""
    states = {}
    for entry in health_status or []:
        name = _name(entry.get("instance", ""))
        state = entry.get("healthState", "UNKNOWN")
        state = state if state in STATE_ORDER else "UNKNOWN"
        if name not in states or STATE_ORDER.index(state) > STATE_ORDER.index(states[name]):
            states[name] = state
    return states


def face_rec_gce_joining(instances, members):
    """Names of the app VMs (instance resources) to join the fleet: running, labelled as app
    VMs, not in the instance group (members: selfLinks), not kept out (label face-rec-drained)."""
    inside = set(face_rec_gce_names(members))
    return [vm["name"] for vm in instances or []
            if vm.get("labels", {}).get("face-rec") == "app"
            and vm.get("labels", {}).get("face-rec-drained", "false") != "true"
            and vm.get("status", "RUNNING") == "RUNNING"
            and vm["name"] not in inside]


def face_rec_gce_members(members, leaving, returning):
    """The instance group's members (selfLinks) after the VMs named in leaving go out and the
    VMs whose selfLinks are in returning come back; the others as Google listed them."""
    out = set(leaving or [])
    kept = [link for link in members or [] if _name(link) not in out]
    return kept + [link for link in returning or [] if link not in kept]


def face_rec_gce_status(hosts, members, health_status):
    """One line per app VM (hostvars of each) for status.yml: in the load balancer or not, and
    the health check's verdict, as on call reads them."""
    inside = set(face_rec_gce_names(members))
    states = face_rec_gce_health_states(health_status)
    lines = []
    for host in hosts:
        name = host["inventory_hostname"]
        where = ("in service" if name in inside
                 else "out of service (kept out: face-rec-drained)" if host.get("face_rec_drained") in (True, "True", "true")
                 else "out of service (not in the instance group)")
        health = f"Google's health check: {states[name]}" if name in states else "no health check verdict"
        lines.append(f"{name} {host.get('face_rec_private_address', '')}: {where}, {health}")
    return lines


class FilterModule:
    def filters(self):
        return {"face_rec_gce_names": face_rec_gce_names, "face_rec_gce_health_states": face_rec_gce_health_states,
                "face_rec_gce_joining": face_rec_gce_joining, "face_rec_gce_members": face_rec_gce_members,
                "face_rec_gce_status": face_rec_gce_status}
