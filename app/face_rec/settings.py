"""Settings and their defaults. Override them in a TOML file named by FACE_REC_CONFIG, or one
by one with FACE_REC_<NAME> environment variables (FACE_REC_TOP_K=5)."""

import os
import tomllib

DEFAULTS = {
    "CASTS_DIR": "/opt/face_rec/shared/casts",
    "ENCODINGS_DIR": "/opt/face_rec/shared/encodings",
    "MAX_UPLOAD_MB": 10,
    # The smallest face the app promises to find, as a share of the photo's longest side:
    # photos are resized for detection so such a face fills the detector's 80 px window
    # (8 -> 1000 px). Lower finds smaller faces in group photos at more CPU per match.
    "MIN_FACE_PERCENT": 8.0,
    # ...and never a face under this many pixels of the photo: a small photo is enlarged at
    # most 80 / MIN_FACE_PIXELS times (tinier faces make poor encodings).
    "MIN_FACE_PIXELS": 40,
    # Anything above this many pixels is refused before it is decoded.
    "MAX_IMAGE_PIXELS": 40_000_000,
    # What decoding one upload may cost, enforced by the kernel on the process that decodes it
    # (face_rec/decode_process.py): CPU seconds, and memory over that process's idle size.
    # 3x and +250 MB of what a 12 MP phone photo's whole match costs (BENCHMARKS.md, Upload cost);
    # beyond either, 413.
    "DECODE_CPU_SECONDS": 0.9,
    "DECODE_MEMORY_MB": 250,
    # Faces matched per photo, the largest first: each one's encoding costs ~30 ms of CPU, so a
    # crowd of 36 faces costs 2x a 12 MP portrait instead of 5x (bench_upload_cost.py).
    "MAX_FACES": 12,
    "TOP_K": 3,
    "MAX_TOP_K": 20,
    # face_recognition's usual threshold: below it, two faces are likely the same person.
    "TOLERANCE": 0.6,
}
TYPES = {name: type(value) for name, value in DEFAULTS.items()}
# Bounds beyond "positive", where a value would make the app useless or far too slow.
RANGES = {"MIN_FACE_PERCENT": (1.0, 50.0), "MIN_FACE_PIXELS": (20, 400)}


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


def load(overrides=None, environ=None):
    """Return the settings: defaults, then the TOML file, then the environment, then overrides."""
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    path = environ.get("FACE_REC_CONFIG")
    if path:
        try:
            with open(path, "rb") as file:
                settings.update({key.upper(): value for key, value in tomllib.load(file).items()})
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise SettingsError(f"cannot read FACE_REC_CONFIG={path}: {error}") from error
    for name in DEFAULTS:
        if f"FACE_REC_{name}" in environ:
            settings[name] = environ[f"FACE_REC_{name}"]
    settings.update(overrides or {})
    return {name: coerce(name, settings[name]) for name in DEFAULTS} | {
        key: value for key, value in settings.items() if key not in DEFAULTS
    }


def coerce(name, value):
    """The setting's value in its type, checked; SettingsError says what is wrong."""
    if name.endswith("_DIR"):
        # Absolute, so nothing resolves it against the app's package folder instead.
        return os.path.abspath(str(value))
    try:
        value = TYPES[name](value)
    except (TypeError, ValueError) as error:
        raise SettingsError(f"{name} must be a {TYPES[name].__name__}, not {value!r}") from error
    if TYPES[name] in (int, float) and value <= 0:
        raise SettingsError(f"{name} must be positive, not {value!r}")
    if name in RANGES and not RANGES[name][0] <= value <= RANGES[name][1]:
        raise SettingsError(f"{name} must be from {RANGES[name][0]} to {RANGES[name][1]}, not {value!r}")
    return value
