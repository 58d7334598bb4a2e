"""face_rec: match the faces in a photo against casts of known people."""

import os

# Each worker process runs one match at a time: OpenBLAS's helper threads (under dlib's face
# encoder) only spin beside it, adding ~70 % CPU per match for no speed (bench_detection.py).
# Set before dlib is first loaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from face_rec.main import create_app

__all__ = ["create_app"]
