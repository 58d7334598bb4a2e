"""face_rec: match the faces in a photo against casts of known people."""

from face_rec.main import create_app

__all__ = ["create_app"]
