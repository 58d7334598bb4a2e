"""What we install is what we pinned: every requirement names the sha256 of each file pip may
take for it, and every pip command that reads a package index checks them (--require-hashes).

A requirement without a hash, or a `pip install` from an index without --require-hashes, lets
a host take whatever the index serves that day. The files and commands are read as text: no
network and no pip run, but for two plays of tests/role_variables/render.yml on the controller
(scripts/pin-requirements.sh compiles the files; README.md, "Pinned and hashed", has the rest).
"""

import concurrent.futures
import pathlib
import re

import jinja2
import pytest
import yaml

from tests.test_role_variables import Case, run

ROOT = pathlib.Path(__file__).resolve().parents[1]
REQUIREMENT_FILES = sorted({*ROOT.glob("requirements/*.txt"), ROOT / "app/requirements.txt",
                            *ROOT.glob("roles/*/files/**/requirements*.txt")})
REQUIREMENT_TEMPLATES = sorted(ROOT.glob("roles/*/templates/requirements*.txt.j2"))
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}(?=\s|$)")
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(?P<version>[^\s;]+)")
# Left out of app/requirements.txt on purpose: roles/dlib builds it from its hashed sdist first.
NOT_IN_APP_REQUIREMENTS = {"dlib"}

# Where pip runs: every task, handler and play, and every script.
YAML_FILES = sorted({*ROOT.glob("roles/**/*.yml"), *ROOT.glob("playbooks/**/*.yml"), ROOT / "site.yml",
                     *ROOT.glob("molecule/**/*.yml"), *ROOT.glob("tests/**/*.yml")})
SHELL_FILES = sorted({*ROOT.glob("scripts/*.sh"), *ROOT.glob("testhost/*.sh"), ROOT / ".ci/run", ROOT / "Makefile"})
PIP = re.compile(r"""(?:\bpip3?|-m\s+pip)["']?\s+(?P<verb>install|wheel|download)\b(?P<args>[^;&|>\n]*)""")
# pip commands that read an index but install no requirement, each with why it may go unhashed.
EXEMPT = {
    ("roles/faceapp/tasks/install_release.yml", "wheel"):
        "builds the app's own wheel from this checkout with --no-deps: no requirement installed",
}


class Loader(yaml.SafeLoader):
    """Reads Ansible's YAML: a tag such as !vault is kept as its text."""


Loader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node)
                             if isinstance(node, yaml.ScalarNode) else None)


def documents(path):
    return list(yaml.load_all(path.read_text(), Loader=Loader))


def normalized(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def logical_lines(text):
    """A requirements file as pip reads it: continuations joined, comments dropped."""
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            yield line


def unhashed(text):
    """The lines of a requirements file that pin no exact version or carry no sha256."""
    bad = []
    for line in logical_lines(text):
        if line.startswith("-"):
            bad.append(f"{line[:60]}: an option (an editable, an index or another file cannot be hashed here)")
        elif not PIN.match(line):
            bad.append(f"{line[:60]}: not pinned with ==")
        elif not HASH.search(line):
            bad.append(f"{line[:60]}: no --hash=sha256:")
    return bad


def pins(text):
    return {normalized(m["name"]): m["version"] for m in map(PIN.match, logical_lines(text)) if m}


def test_the_requirement_files_are_found():
    found = {str(path.relative_to(ROOT)) for path in REQUIREMENT_FILES}
    assert {"requirements/controller.txt", "requirements/gce.txt", "requirements/pip-tools.txt",
            "app/requirements.txt"} <= found, found
    assert {path.parent.parent.name for path in REQUIREMENT_TEMPLATES} == {"dlib", "uwsgi"}


@pytest.mark.parametrize("path", REQUIREMENT_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_requirement_has_a_hash(path):
    lines = list(logical_lines(path.read_text()))
    assert lines, "no requirement at all"
    bad = unhashed(path.read_text())
    assert not bad, "\n".join(bad)


def test_a_requirement_without_a_hash_is_caught():
    assert unhashed("flask==3.1.3 \\\n    --hash=sha256:" + "a" * 64 + "\n") == []
    assert len(unhashed("flask==3.1.3\n")) == 1
    assert len(unhashed("flask>=3.1 --hash=sha256:" + "a" * 64 + "\n")) == 1
    assert len(unhashed("flask==3.1.3 --hash=sha256:abc\n")) == 1
    assert len(unhashed("-e app\n")) == 1
    assert unhashed("# flask==3.1.3\n\n") == []


@pytest.mark.parametrize("path", [path for path in REQUIREMENT_FILES if path.with_suffix(".in").exists()],
                         ids=lambda path: str(path.relative_to(ROOT)))
def test_the_top_level_pins_are_compiled(path):
    """Each pin of the .in is in the .txt compiled from it, at the same version: an edited .in
    that was not compiled again fails here (scripts/pin-requirements.sh)."""
    wanted = pins(path.with_suffix(".in").read_text())
    compiled = pins(path.read_text())
    left_out = NOT_IN_APP_REQUIREMENTS if path == ROOT / "app/requirements.txt" else set()
    assert left_out <= set(wanted)
    assert not left_out & set(compiled), f"{left_out} must stay out of {path.name}"
    differ = {name: (version, compiled.get(name)) for name, version in wanted.items()
              if name not in left_out and compiled.get(name) != version}
    assert not differ, f"pinned in the .in, not so in the .txt: {differ}"


@pytest.mark.parametrize("template", REQUIREMENT_TEMPLATES, ids=lambda path: path.parent.parent.name)
def test_the_roles_sdists_are_hashed(template):
    """roles/<role>/vars/main.yml maps each allowed version to its sdist's sha256; the role's
    default version is among them and its requirement file, rendered, is hashed."""
    role = template.parent.parent
    name = role.name
    known = yaml.safe_load((role / "vars/main.yml").read_text())[f"__{name}_sdist_sha256"]
    assert known and all(re.fullmatch(r"[0-9a-f]{64}", sha) for sha in known.values()), known
    version = yaml.safe_load((role / "defaults/main.yml").read_text())[f"{name}_version"]
    assert version in known
    rendered = jinja2.Template(template.read_text()).render(
        ansible_managed="managed", **{f"{name}_version": version, f"{name}_sdist_sha256": known[version]})
    assert not unhashed(rendered), unhashed(rendered)
    assert pins(rendered) == {name: version}


def test_an_unknown_version_is_refused():
    """A version without a known sdist hash stops the role before it installs anything."""
    cases = [Case("dlib-unknown", "dlib", {"dlib_version": "19.24.2", "dlib_cpu_baseline": "native"}),
             Case("uwsgi-unknown", "uwsgi", {"uwsgi_version": "2.0.24"})]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(cases)) as pool:
        results = list(pool.map(run, cases))
    for case, (returncode, failed, shown) in zip(cases, results):
        version = next(iter(case.strings.values()))
        assert returncode != 0 and shown is None, f"{case.id}: the play should have stopped"
        assert len(failed) == 1, failed
        assert f"{case.role}_version {version} has no sdist sha256 in roles/{case.role}/vars/main.yml" in failed[0][1]


def strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def pip_commands():
    """(file, verb, arguments) of every pip install, wheel and download in tasks and scripts."""
    found = []
    sources = [(path, text) for path in YAML_FILES
               for document in documents(path) for text in strings(document)]
    for path in SHELL_FILES:
        if path.exists():
            text = re.sub(r"\\\n", " ", path.read_text())
            sources.append((path, "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))))
    for path, text in sources:
        text = re.sub(r"\{\{.*?\}\}", "JINJA", text, flags=re.S)
        for match in PIP.finditer(text):
            found.append((str(path.relative_to(ROOT)), match["verb"], match["args"].split()))
    return found


def test_every_pip_command_from_an_index_checks_hashes():
    """--require-hashes, or --no-index for a local file (a wheel built here, the app's source)."""
    commands = pip_commands()
    seen = {(path, verb) for path, verb, _ in commands}
    # The scanner reads them all: these are where the installs are today.
    assert {("roles/faceapp/tasks/install_release.yml", "install"), ("roles/uwsgi/tasks/install.yml", "install"),
            ("roles/uwsgi/tasks/install.yml", "wheel"),
            ("roles/dlib/tasks/build.yml", "wheel"), ("roles/dlib/tasks/install.yml", "install"),
            ("scripts/bootstrap.sh", "install"), ("scripts/controller-dlib.sh", "wheel"),
            ("scripts/pin-requirements.sh", "install")} <= seen, seen
    bad = [f"{path}: pip {verb} {' '.join(args)}" for path, verb, args in commands
           if "--require-hashes" not in args and "--no-index" not in args and (path, verb) not in EXEMPT]
    assert not bad, "reads an index without --require-hashes:\n" + "\n".join(bad)
    # A hashed install takes its pins from a file: a hash cannot be given on the command line.
    loose = [f"{path}: pip {verb} {' '.join(args)}" for path, verb, args in commands
             if "--require-hashes" in args and "-r" not in args]
    assert not loose, "\n".join(loose)


def test_no_task_uses_the_pip_module():
    """ansible.builtin.pip would install past the checks above (and needs packaging on the host)."""
    def tasks(node):
        if isinstance(node, list):
            for child in node:
                yield from tasks(child)
        elif isinstance(node, dict):
            yield node
            for child in node.values():
                yield from tasks(child)

    users = [f"{path.relative_to(ROOT)}: {task.get('name')}" for path in YAML_FILES
             for document in documents(path) for task in tasks(document)
             if {"pip", "ansible.builtin.pip", "ansible.legacy.pip"} & set(task)]
    assert not users, users
