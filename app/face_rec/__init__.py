"""face_rec: match the faces in a photo against casts of known people."""

import os

# Each worker process runs one match at a time: OpenBLAS's helper threads (under dlib's face
# encoder) only spin beside it, adding ~70 % CPU per match for no speed (bench_detection.py).
# Set before dlib is first loaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__all__ = ["create_app"]


def __getattr__(name):
    # `from face_rec import create_app` imports the web app on demand only, so the
    # create_encodings command loads no Flask route.
    if name == "create_app":
        from face_rec.main import create_app  # noqa: PLC0415
        return create_app
    raise AttributeError(f"module 'face_rec' has no attribute {name!r}")
