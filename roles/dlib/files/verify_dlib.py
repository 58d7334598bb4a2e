"""Print what the installed dlib reports, as JSON: version, BLAS/LAPACK/CUDA, linked GUI libraries."""

import json
import subprocess

import _dlib_pybind11
import dlib

linked = subprocess.run(["ldd", _dlib_pybind11.__file__], capture_output=True, text=True, check=True).stdout
print(json.dumps({
    "version": dlib.__version__,
    "blas": bool(dlib.DLIB_USE_BLAS),
    "lapack": bool(dlib.DLIB_USE_LAPACK),
    "cuda": bool(dlib.DLIB_USE_CUDA),
    "gui_libraries": sorted({line.split()[0] for line in linked.splitlines() if "libX11" in line or "libxcb" in line}),
}))
