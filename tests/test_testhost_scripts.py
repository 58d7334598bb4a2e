"""The test-host scripts against the real Docker engine that scripts/bootstrap.sh started."""

import subprocess

import pytest

LABEL = "org.face-rec.testhost"


def sh(*args, check=True, **kwargs):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kwargs)


def container_names():
    return set(sh("docker", "ps", "-a", "--format", "{{.Names}}").stdout.split())


@pytest.fixture
def foreign_container():
    """A container this project did not start: teardown must leave it alone."""
    name = "not-face-rec-probe"
    sh("docker", "rm", "-f", name, check=False)
    sh("docker", "create", "--name", name, "face-rec/debian12:latest", "true")
    yield name
    sh("docker", "rm", "-f", name, check=False)


def image_id(name):
    return sh("docker", "image", "inspect", "-f", "{{.Id}}", name).stdout.strip()


def test_image_build_is_cached(repo_root):
    first = sh(str(repo_root / "testhost/build-image.sh")).stdout.strip()
    first_id = image_id(first)
    second = sh(str(repo_root / "testhost/build-image.sh")).stdout.strip()
    assert first == second and first.startswith("face-rec/debian12:")
    # Same recipe, same image: the second call only looked it up, it did not rebuild.
    assert image_id(second) == first_id == image_id("face-rec/debian12:latest")


def test_down_removes_only_what_the_project_started(repo_root, foreign_container):
    # The kind "probe" keeps this test away from hosts that other runs may be using.
    ours = "face-rec-teardown-probe"
    sh("docker", "run", "-d", "--name", ours, "--label", f"{LABEL}=probe", "face-rec/debian12:latest",
       "sleep", "600")
    sh("docker", "network", "create", "--label", f"{LABEL}=probe", "face-rec-teardown-net")

    sh(str(repo_root / "scripts/down.sh"), "probe")

    names = container_names()
    assert ours not in names
    assert foreign_container in names
    networks = sh("docker", "network", "ls", "--format", "{{.Name}}").stdout.split()
    assert "face-rec-teardown-net" not in networks


def test_scripts_refuse_to_run_without_root(repo_root):
    result = sh("runuser", "-u", "nobody", "--", "bash", str(repo_root / "scripts/down.sh"), check=False)
    assert result.returncode == 1
    assert "run this as root" in result.stderr
