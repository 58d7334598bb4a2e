"""Entry point for uWSGI: `module = face_rec.wsgi:app`."""

from face_rec.main import create_app

app = create_app()
