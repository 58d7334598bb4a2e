"""roles/dlib, and roles/uwsgi's install: each built from source once, shared with the second
host through the controller cache, verified in the venv."""

import json
import os
import pathlib

import pytest

VENV = "/opt/face_rec/venv"
EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


def key_dir(host):
    dirs = host.run("ls -d /var/cache/dlib-wheels/dlib-20.0.1-*").stdout.split()
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_dlib_imports_with_blas_lapack_and_no_gui(host):
    script = ("import dlib, json, subprocess, _dlib_pybind11 as m; "
              "print(json.dumps([dlib.__version__, dlib.DLIB_USE_BLAS, dlib.DLIB_USE_LAPACK, "
              "subprocess.run(['ldd', m.__file__], capture_output=True, text=True).stdout]))")
    version, blas, lapack, linked = json.loads(host.check_output(f"{VENV}/bin/python -c \"{script}\""))
    assert (version, blas, lapack) == ("20.0.1", True, True)
    assert "libX11" not in linked and "libopenblas" in linked


def test_wheel_is_kept_under_its_key(host):
    directory = key_dir(host)
    assert directory.endswith("-cp313-debian13-x86_64-avx")
    assert host.file(f"{directory}/dlib-20.0.1-cp313-cp313-linux_x86_64.whl").is_file
    assert host.file(f"{VENV}/dlib-build-key").content_string == directory.rsplit("/", 1)[1]


def test_first_host_compiled_with_the_pinned_baseline(host):
    if host.backend.get_hostname() != "face-rec-dlib1":
        pytest.skip("only the first host compiles; the second takes its wheel")
    log = host.file(f"{key_dir(host)}/build.log").content_string
    assert "Enabling AVX instructions" in log
    assert "Building wheel for dlib" in log


def test_second_host_compiled_nothing(host):
    if host.backend.get_hostname() != "face-rec-dlib2":
        pytest.skip("the first host compiles; only the second takes the cached wheel")
    assert not host.file(f"{key_dir(host)}/build.log").exists
    assert not host.package("build-essential").is_installed
    assert not host.package("cmake").is_installed


def test_uwsgi_runs_from_the_wheel_compiled_once(host):
    assert host.check_output(f"{VENV}/bin/uwsgi --version") == "2.0.31"
    wheels = host.run("ls /var/cache/uwsgi-wheels/uwsgi-2.0.31-cp313-debian13-x86_64/").stdout.split()
    assert len(wheels) == 1 and wheels[0].lower().startswith("uwsgi-2.0.31-cp313-"), wheels


def test_controller_cache_holds_the_wheel():
    wheels = list((EPHEMERAL / "dlib-cache").glob("*/dlib-20.0.1-*.whl"))
    assert len(wheels) == 1
    assert len(list((EPHEMERAL / "uwsgi-cache").glob("uwsgi-2.0.31-cp313-debian13-x86_64/*.whl"))) == 1
    first = float((EPHEMERAL / "face-rec-dlib1.seconds").read_text())
    second = float((EPHEMERAL / "face-rec-dlib2.seconds").read_text())
    # Reported, not asserted: timings are for BENCHMARKS.md, not for tests.
    print(f"\ndlib role: first host {first:.0f} s (compiled), second host {second:.0f} s (cached wheel)")
