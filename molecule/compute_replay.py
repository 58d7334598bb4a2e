"""Compute Engine's v1 API replayed on the controller, for rehearsing the GCE plays here, where
Google never answers: what the plays and inventory/gcp.yml send goes where they send it
(https://www.googleapis.com/compute/v1/...) through an HTTPS proxy of ours (HTTPS_PROXY, a CA of
ours in REQUESTS_CA_BUNDLE), with the google.cloud collection's own code unchanged.

Every request is matched to its method in Google's discovery document (compute.v1.json, from
the google-api-python-client wheel on PyPI, pinned below) and its body checked against the
method's request schema: a field Google does not know, a wrong type or enum value is a
recorded problem (`problems`) and a 400 in Google's error shape. Answers are built in the
shape of the method's response schema (and checked against it too): resources keep what was
sent plus the fields Google adds (kind, id, selfLink, status, addresses), inserts and deletes
answer with a finished Operation, lists filter as Compute's `filter` does for the expressions
the plays use. The VMs' addresses are given (`addresses`: VM name -> a test host's address),
and backendServices.getHealth asks each VM's /healthz over HTTP as Google's health check does
(healthy after 2 answers of 200 in a row, unhealthy after 2 failures).

    with ComputeReplay(addresses={"face-rec-1": "172.30.13.14"}) as replay:
        subprocess.run([...ansible-playbook...], env={**os.environ, **replay.env})
        assert not replay.problems
"""

import datetime
import http.server
import itertools
import json
import pathlib
import re
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile

CACHE = pathlib.Path("/var/cache/face_rec/compute-discovery")
# The discovery document ships in this wheel (googleapiclient/discovery_cache/documents/).
CLIENT_WHEEL = "google-api-python-client==2.202.0"
CLIENT_WHEEL_SHA256 = "aaa90064c9bb642ff1d065b22ca8958a2cb6e345909cefe70d0e5452fc50e08b"
API_HOSTS = ["www.googleapis.com", "compute.googleapis.com"]
BASE = "https://www.googleapis.com/compute/v1/"
HEALTHY_THRESHOLD = UNHEALTHY_THRESHOLD = 2


def discovery_document():
    """compute.v1.json, fetched once with pip (hash-checked) and cached."""
    path = CACHE / "compute.v1.json"
    if not path.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            requirement = pathlib.Path(tmp) / "requirement.txt"
            requirement.write_text(f"{CLIENT_WHEEL} --hash=sha256:{CLIENT_WHEEL_SHA256}\n")
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                            "--require-hashes", "-r", str(requirement), "-d", tmp], check=True)
            wheel = next(pathlib.Path(tmp).glob("google_api_python_client-*.whl"))
            with zipfile.ZipFile(wheel) as archive:
                data = archive.read("googleapiclient/discovery_cache/documents/compute.v1.json")
            CACHE.mkdir(parents=True, exist_ok=True)
            staged = path.with_suffix(".tmp")
            staged.write_bytes(data)
            staged.replace(path)
    return json.loads(path.read_text())


def throwaway_certificate(folder):
    """A self-signed certificate and its key for the load balancer (fullchain.pem, privkey.pem
    in folder), made for the run: nothing is committed."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(pathlib.Path(folder) / "privkey.pem"), "-out", str(pathlib.Path(folder) / "fullchain.pem"),
                    "-days", "1", "-subj", "/CN=face-rec.test"], check=True, capture_output=True)


def rehearsal_inventory(folder, project):
    """inventory/gcp.yml as on call sets it up (its `projects:` naming the project), the rest as
    committed: the copy's path."""
    root = pathlib.Path(__file__).resolve().parents[1]
    inventory = pathlib.Path(folder) / "gcp.yml"
    inventory.write_text((root / "inventory" / "gcp.yml").read_text().replace("projects: []", f"projects: [{project}]"))
    return inventory


class Discovery:
    """The methods of compute.v1.json by HTTP method and path, and its schemas."""

    def __init__(self, document):
        self.schemas = document["schemas"]
        self.methods = []

        def walk(resources):
            for resource_name, resource in resources.items():
                for method in resource.get("methods", {}).values():
                    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", method.get("flatPath", method["path"]))
                    self.methods.append((method["httpMethod"], re.compile(f"^{pattern}$"), resource_name, method))
                walk(resource.get("resources", {}))
        walk(document["resources"])

    def match(self, http_method, path):
        for verb, pattern, resource_name, method in self.methods:
            found = pattern.match(path) if verb == http_method else None
            if found:
                return resource_name, method, found.groupdict()
        return None, None, None

    def check(self, value, schema, where="body"):
        """Where value disagrees with the schema, as sentences."""
        if "$ref" in schema:
            schema = self.schemas[schema["$ref"]]
        kind = schema.get("type")
        if kind == "object":
            if not isinstance(value, dict):
                return [f"{where}: an object expected, got {value!r}"]
            problems = []
            properties = schema.get("properties", {})
            for key, item in value.items():
                if key in properties:
                    problems += self.check(item, properties[key], f"{where}.{key}")
                elif "additionalProperties" in schema:
                    problems += self.check(item, schema["additionalProperties"], f"{where}.{key}")
                else:
                    problems.append(f"{where}.{key}: not a field of {schema.get('id', 'this object')}")
            return problems
        if kind == "array":
            if not isinstance(value, list):
                return [f"{where}: a list expected, got {value!r}"]
            return [p for number, item in enumerate(value) for p in self.check(item, schema["items"], f"{where}[{number}]")]
        if kind == "string":
            if schema.get("format") in ("int64", "uint64") and isinstance(value, int) and not isinstance(value, bool):
                return []
            if not isinstance(value, str):
                return [f"{where}: a string expected, got {value!r}"]
            if "enum" in schema and value not in schema["enum"]:
                return [f"{where}: {value!r} is not one of {schema['enum']}"]
            return []
        # Numbers as JSON numbers or as strings of one: Google's JSON mapping (proto3) takes both.
        if kind == "integer":
            ok = (isinstance(value, int) and not isinstance(value, bool)) or bool(re.fullmatch(r"-?[0-9]+", str(value)))
            return [] if ok and not isinstance(value, (bool, float)) else [f"{where}: an integer expected, got {value!r}"]
        if kind == "number":
            ok = isinstance(value, (int, float)) or bool(re.fullmatch(r"-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?", str(value)))
            return [] if ok and not isinstance(value, bool) else [f"{where}: a number expected, got {value!r}"]
        if kind == "boolean":
            return [] if isinstance(value, bool) else [f"{where}: true or false expected, got {value!r}"]
        return []

    def kind_of(self, schema_name):
        """The `kind` a resource of that schema carries (compute#firewall)."""
        return self.schemas[schema_name].get("properties", {}).get("kind", {}).get("default")


def _matches(resource, expression):
    """Compute's list filter, for the forms the plays use: `labels.x = y`, `name eq regex`,
    `field != value`, joined by AND / OR (in parentheses) or by spaces (AND)."""
    expression = expression.strip()
    if not expression:
        return True
    groups = re.findall(r"\(([^()]*)\)", expression)
    if groups and re.sub(r"\([^()]*\)", "", expression).strip(" ORAND") == "":
        joined_by_or = re.search(r"\)\s*OR\s*\(", expression)
        results = [_matches(resource, group) for group in groups]
        return any(results) if joined_by_or else all(results)
    if " OR " in expression:
        return any(_matches(resource, part) for part in expression.split(" OR "))
    if " AND " in expression:
        return all(_matches(resource, part) for part in expression.split(" AND "))
    field, operator, wanted = re.match(r"^\s*([\w.-]+)\s*(=|!=|eq|ne)\s*(.*?)\s*$", expression).groups()
    value = resource
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    value = "" if value is None else str(value)
    wanted = wanted.strip('"')
    if operator in ("eq", "ne"):
        hit = re.fullmatch(wanted, value) is not None
        return hit if operator == "eq" else not hit
    return (value == wanted) if operator == "=" else (value != wanted)


class ComputeReplay:
    """The replay: start it (a context manager), point a process at it with `env`."""

    def __init__(self, addresses, project="face-rec-rehearsal", edge_address="203.0.113.10"):
        self.discovery = Discovery(discovery_document())
        self.addresses = dict(addresses)
        self.edge_address = edge_address
        self.project = project
        self.resources = {}  # path under BASE -> resource
        self.operations = {}
        self.group_members = {}  # instance group path -> [instance selfLinks]
        self.health_runs = {}  # instance selfLink -> (state, last answer healthy, answers like it in a row)
        self.requests = []  # (method id, path)
        self.problems = []
        self.ids = itertools.count(7_000_000_000_000_000_000)
        self.lock = threading.Lock()
        self.tmp = tempfile.TemporaryDirectory(prefix="compute-replay.")
        self.ca_file = self._make_certificates(pathlib.Path(self.tmp.name))
        self.server = None

    # -- TLS and the proxy --------------------------------------------------------------------
    def _make_certificates(self, folder):
        def openssl(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem"), "-subj", "/CN=compute replay CA")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", str(folder / "api.key"), "-out", str(folder / "api.csr"), "-subj", f"/CN={API_HOSTS[0]}")
        (folder / "san.ext").write_text("subjectAltName=" + ",".join(f"DNS:{host}" for host in API_HOSTS) + "\n")
        openssl("x509", "-req", "-in", str(folder / "api.csr"), "-CA", str(folder / "ca.pem"), "-CAkey",
                str(folder / "ca.key"), "-CAcreateserial", "-days", "1", "-extfile", str(folder / "san.ext"),
                "-out", str(folder / "api.pem"))
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(str(folder / "api.pem"), str(folder / "api.key"))
        return folder / "ca.pem"

    def __enter__(self):
        replay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args):
                pass

            def do_CONNECT(self):  # noqa: N802 (http.server's naming)
                host = self.path.split(":")[0]
                if host not in API_HOSTS:
                    self.send_error(403, f"only {API_HOSTS} are replayed")
                    return
                self.send_response(200, "Connection established")
                self.end_headers()
                self.connection = replay.tls.wrap_socket(self.connection, server_side=True)
                self.rfile = self.connection.makefile("rb")
                self.wfile = self.connection.makefile("wb")
                self.close_connection = False

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, answer = replay.handle(self.command, self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer  # noqa: N815

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc):
        self.server.shutdown()
        self.server.server_close()
        self.tmp.cleanup()

    @property
    def env(self):
        """What a process needs to send Compute's requests here (and nothing else)."""
        proxy = f"http://127.0.0.1:{self.server.server_address[1]}"
        direct = "127.0.0.1,localhost,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"  # the test hosts
        return {"HTTPS_PROXY": proxy, "https_proxy": proxy, "NO_PROXY": direct, "no_proxy": direct,
                "REQUESTS_CA_BUNDLE": str(self.ca_file),
                "GCP_AUTH_KIND": "accesstoken", "GCP_ACCESS_TOKEN": "compute-replay"}

    # -- the API -------------------------------------------------------------------------------
    def _error(self, code, message, reason):
        return code, {"error": {"code": code, "message": message,
                                "errors": [{"message": message, "domain": "global", "reason": reason}]}}

    def handle(self, http_method, raw_path, raw_body):
        url = urllib.parse.urlsplit(raw_path)
        path = url.path
        for prefix in ("/compute/v1/",):
            if path.startswith(prefix):
                path = path[len(prefix):]
        query = dict(urllib.parse.parse_qsl(url.query))
        resource_name, method, params = self.discovery.match(http_method, path)
        if method is None:
            self.problems.append(f"{http_method} {path}: no such method in compute.v1.json")
            return self._error(400, f"Invalid request: {http_method} {path}", "invalid")
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            self.problems.append(f"{method['id']}: the body is not JSON")
            return self._error(400, "Invalid JSON payload received.", "parseError")
        with self.lock:
            self.requests.append((method["id"], path))
            if params.get("project") not in (None, self.project):
                self.problems.append(f"{method['id']}: project {params['project']!r}, not {self.project!r}")
                return self._error(404, f"The resource 'projects/{params['project']}' was not found", "notFound")
            if "request" in method:
                found = self.discovery.check(body if body is not None else {}, method["request"])
                if found:
                    self.problems += [f"{method['id']}: {problem}" for problem in found]
                    return self._error(400, "; ".join(found), "invalid")
            status, answer = self._dispatch(resource_name, method, params, path, query, body)
            if status == 200 and "response" in method:
                self.problems += [f"{method['id']} answer: {p}" for p in self.discovery.check(answer, method["response"])]
            return status, answer

    def _operation(self, verb, target, scope):
        name = f"operation-{next(self.ids)}"
        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        operation = {"kind": "compute#operation", "id": str(next(self.ids)), "name": name, "operationType": verb,
                     "targetLink": BASE + target, "targetId": str(next(self.ids)), "status": "DONE", "progress": 100,
                     "insertTime": now, "startTime": now, "endTime": now, "user": "compute-replay"}
        scope_path = f"projects/{self.project}/global"
        if scope.startswith("zones/") or scope.startswith("regions/"):
            operation[scope.split("/")[0][:-1]] = BASE + f"projects/{self.project}/{scope}"
            scope_path = f"projects/{self.project}/{scope}"
        operation["selfLink"] = BASE + f"{scope_path}/operations/{name}"
        self.operations[f"{scope_path}/operations/{name}"] = operation
        return 200, operation

    def _dispatch(self, resource_name, method, params, path, query, body):
        verb = method["id"].rsplit(".", 1)[1]
        scope = "/".join(path.split("/")[2:4]) if path.split("/")[2] in ("zones", "regions") else "global"
        if resource_name.endswith("Operations") and verb == "get":
            found = self.operations.get(path)
            return (200, found) if found else self._error(404, f"The resource '{path}' was not found", "notFound")
        if verb == "insert":
            return self._insert(method, path, scope, body)
        if verb == "get":
            found = self.resources.get(path)
            if found is None:
                return self._error(404, f"The resource 'projects/{path.split('/', 2)[2]}' was not found", "notFound")
            return 200, found
        if verb == "delete":
            if path not in self.resources:
                return self._error(404, f"The resource '{path}' was not found", "notFound")
            del self.resources[path]
            self.group_members.pop(path, None)
            return self._operation("delete", path, scope)
        if verb == "list":
            return 200, self._list(method, path, query)
        if verb == "aggregatedList":
            return 200, self._aggregated(method, path, query)
        if verb in ("patch", "update") or verb.startswith("set"):
            target = path.rsplit("/", 1)[0] if verb.startswith("set") else path
            if target not in self.resources:
                return self._error(404, f"The resource '{target}' was not found", "notFound")
            self._merge(self.resources[target], verb, body or {})
            return self._operation(verb, target, scope)
        if resource_name == "instanceGroups":
            return self._instance_group(verb, path.rsplit("/", 1)[0], scope, body or {})
        if resource_name == "backendServices" and verb == "getHealth":
            return 200, self._health(body or {})
        self.problems.append(f"{method['id']}: the replay does not answer this method yet")
        return self._error(400, f"{method['id']} is not replayed", "invalid")

    def _merge(self, resource, verb, body):
        if verb == "setLabels":
            resource["labels"] = body.get("labels", {})
            resource["labelFingerprint"] = str(next(self.ids))
        elif verb == "setMetadata":
            resource["metadata"] = {**body, "fingerprint": str(next(self.ids)), "kind": "compute#metadata"}
        elif verb == "setTags":
            resource["tags"] = {**body, "fingerprint": str(next(self.ids))}
        else:
            resource.update({key: value for key, value in body.items() if key not in ("kind", "id", "selfLink")})

    def _insert(self, method, path, scope, body):
        schema = method["request"]["$ref"]
        name = body.get("name", "")
        target = f"{path}/{name}"
        if target in self.resources:
            return self._error(409, f"The resource '{target}' already exists", "alreadyExists")
        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        resource = {**body, "kind": self.discovery.kind_of(schema), "id": str(next(self.ids)),
                    "creationTimestamp": now, "selfLink": BASE + target}
        if scope.startswith("zones/"):
            resource["zone"] = BASE + f"projects/{self.project}/{scope}"
        if scope.startswith("regions/"):
            resource["region"] = BASE + f"projects/{self.project}/{scope}"
        if schema == "Instance":
            if name not in self.addresses:
                self.problems.append(f"instances.insert: {name} has no test host address")
                return self._error(400, f"no address for {name}", "invalid")
            resource.update(status="RUNNING", cpuPlatform="Intel Broadwell", labelFingerprint=str(next(self.ids)))
            resource["machineType"] = BASE + f"projects/{self.project}/{scope}/machineTypes/" + body["machineType"].rsplit("/", 1)[-1]
            for number, interface in enumerate(resource.get("networkInterfaces", [])):
                interface.update(kind="compute#networkInterface", name=f"nic{number}", networkIP=self.addresses[name],
                                 fingerprint=str(next(self.ids)), stackType="IPV4_ONLY")
                for config in interface.get("accessConfigs", []):
                    config.update(kind="compute#accessConfig", natIP=self.addresses[name], networkTier="PREMIUM")
            if "metadata" in resource:
                resource["metadata"] = {**resource["metadata"], "kind": "compute#metadata", "fingerprint": str(next(self.ids))}
            for disk in resource.get("disks", []):
                disk.update(kind="compute#attachedDisk", type="PERSISTENT", mode="READ_WRITE", deviceName=name)
        elif schema == "Disk":
            resource.update(status="READY", type=BASE + f"projects/{self.project}/{scope}/diskTypes/pd-standard")
        elif schema == "Address":
            resource.update(address=self.edge_address, status="RESERVED", addressType="EXTERNAL")
        elif schema == "Network":
            resource.update(routingConfig={"routingMode": "REGIONAL"}, subnetworks=[])
        elif schema == "Subnetwork":
            resource.update(gatewayAddress=str(body["ipCidrRange"]).rsplit(".", 1)[0] + ".1")
        elif schema == "InstanceGroup":
            resource.update(size=0)
            self.group_members[target] = []
        elif schema == "SslCertificate":
            resource.pop("privateKey", None)  # Google never answers it back
            resource.update(type="SELF_MANAGED", expireTime="2027-12-31T00:00:00.000-08:00")
        if "fingerprint" in self.discovery.schemas[schema].get("properties", {}):
            resource.setdefault("fingerprint", str(next(self.ids)))
        self.resources[target] = resource
        return self._operation("insert", target, scope)

    def _collection(self, path):
        return [resource for key, resource in self.resources.items() if key.rsplit("/", 1)[0] == path]

    def _list(self, method, path, query):
        items = [r for r in self._collection(path) if _matches(r, query.get("filter", ""))]
        answer = {"kind": self.discovery.kind_of(method["response"]["$ref"]), "id": path, "selfLink": BASE + path}
        if items:
            answer["items"] = items
        return answer

    def _aggregated(self, method, path, query):
        collection = path.rsplit("/", 1)[1]
        items = {}
        for key, resource in self.resources.items():
            parts = key.split("/")
            if len(parts) == 6 and parts[2] in ("zones", "regions") and parts[4] == collection \
                    and _matches(resource, query.get("filter", "")):
                items.setdefault(f"{parts[2]}/{parts[3]}", {}).setdefault(collection, []).append(resource)
        return {"kind": self.discovery.kind_of(method["response"]["$ref"]), "id": path, "items": items,
                "selfLink": BASE + path}

    def _instance_group(self, verb, group, scope, body):
        if group not in self.resources:
            return self._error(404, f"The resource '{group}' was not found", "notFound")
        members = self.group_members.setdefault(group, [])
        if verb == "listInstances":
            answer = {"kind": "compute#instanceGroupsListInstances", "id": group, "selfLink": BASE + group + "/listInstances"}
            if members:
                answer["items"] = [{"instance": link, "status": "RUNNING"} for link in members]
            return 200, answer
        links = [entry["instance"] for entry in body.get("instances", [])]
        if verb == "addInstances":
            members += [link for link in links if link not in members]
        elif verb == "removeInstances":
            members[:] = [link for link in members if link not in links]
        else:
            return self._error(400, f"instanceGroups.{verb} is not replayed", "invalid")
        self.resources[group]["size"] = len(members)
        return self._operation(verb, group, scope)

    def _health(self, body):
        group = body.get("group", "")[len(BASE):]
        answer = {"kind": "compute#backendServiceGroupHealth", "healthStatus": []}
        for link in self.group_members.get(group, []):
            instance = self.resources.get(link[len(BASE):], {})
            address = instance.get("networkInterfaces", [{}])[0].get("networkIP", "")
            answer["healthStatus"].append({"instance": link, "ipAddress": address, "port": 80,
                                           "healthState": self._probe(link, address)})
        if not answer["healthStatus"]:
            del answer["healthStatus"]
        return answer

    def _probe(self, link, address):
        """Google's health check: GET /healthz on port 80 within 3 s; a state changes after two
        answers in a row say so."""
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                    f"http://{address}/healthz", timeout=3) as answer:
                healthy = answer.status == 200
        except (OSError, urllib.error.URLError):
            healthy = False
        state, seen, count = self.health_runs.get(link, ("UNHEALTHY", None, 0))
        count = count + 1 if seen == healthy else 1
        if count >= (HEALTHY_THRESHOLD if healthy else UNHEALTHY_THRESHOLD):
            state = "HEALTHY" if healthy else "UNHEALTHY"
        self.health_runs[link] = (state, healthy, count)
        return state
