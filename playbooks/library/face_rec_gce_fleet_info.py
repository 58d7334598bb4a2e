#!/usr/bin/python
"""What Google's load balancer knows of a face_rec fleet: which VMs its instance group holds
and how its backend service's health check sees them. Read-only: two Compute v1 calls,
instanceGroups.listInstances and backendServices.getHealth, with the google.cloud collection's
own session (the same credentials and auth_kind as its modules). What the plays make of the
answers is in filter_plugins/face_rec_gce.py."""

DOCUMENTATION = r"""
module: face_rec_gce_fleet_info
short_description: The members of a fleet's instance group and Google's health of each
description:
  - Calls instanceGroups.listInstances on the zonal instance group and, when a backend service
    is named, backendServices.getHealth for that group. Changes nothing.
options:
  zone: {description: The instance group's zone., type: str, required: true}
  instance_group: {description: The unmanaged instance group's name., type: str, required: true}
  backend_service:
    description: The global backend service whose health check to read; none, no health is read.
    type: str
extends_documentation_fragment: [google.cloud.gcp]
"""

RETURN = r"""
members: {description: The selfLinks of the VMs in the group (none when the group does not exist)., type: list, returned: always}
group_exists: {description: Whether the instance group exists., type: bool, returned: always}
health: {description: 'getHealth''s healthStatus list: instance, ipAddress, port, healthState.', type: list, returned: always}
"""

from ansible_collections.google.cloud.plugins.module_utils.gcp_utils import GcpModule, GcpSession

COMPUTE = "https://www.googleapis.com/compute/v1/projects/{project}"


def answer(module, response, what):
    """The JSON body of a Compute answer, None for 404; the API's own message otherwise."""
    if response.status_code == 404:
        return None
    try:
        body = response.json()
    except ValueError:
        module.fail_json(msg=f"{what}: HTTP {response.status_code}, not JSON: {response.text[:200]}")
    if response.status_code >= 400 or "error" in body:
        error = body.get("error", {})
        module.fail_json(msg=f"{what}: HTTP {response.status_code}: {error.get('message', error)}")
    return body


def main():
    module = GcpModule(
        argument_spec=dict(zone=dict(type="str", required=True), instance_group=dict(type="str", required=True),
                           backend_service=dict(type="str")),
        supports_check_mode=True)
    if not module.params["scopes"]:
        module.params["scopes"] = ["https://www.googleapis.com/auth/compute.readonly"]
    session = GcpSession(module, "compute")
    base = COMPUTE.format(project=module.params["project"])
    group = f"{base}/zones/{module.params['zone']}/instanceGroups/{module.params['instance_group']}"

    members, page, group_exists = [], None, True
    while True:
        link = f"{group}/listInstances" + (f"?pageToken={page}" if page else "")
        body = answer(module, session.post(link, {"instanceState": "ALL"}), f"listInstances {module.params['instance_group']}")
        if body is None:
            group_exists = False
            break
        members += [item["instance"] for item in body.get("items", [])]
        page = body.get("nextPageToken")
        if not page:
            break

    health = []
    if module.params["backend_service"] and group_exists:
        link = f"{base}/global/backendServices/{module.params['backend_service']}/getHealth"
        body = answer(module, session.post(link, {"group": group}), f"getHealth {module.params['backend_service']}")
        health = (body or {}).get("healthStatus", [])

    module.exit_json(changed=False, members=members, group_exists=group_exists, health=health)


if __name__ == "__main__":
    main()
