"""Casts on disk: what the app serves and create_encodings encodes.

A cast is a folder `<casts_dir>/<cast>/` holding `cast.yml` (title, description) and one
folder per member, `<member>/`, with photos and an optional `member.yml` (name, role).
Folder names are slugs; anything else is refused, so no name can reach outside casts_dir.
"""

import dataclasses
import pathlib
import re

import yaml

SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})


class CastError(ValueError):
    """A cast folder that does not follow the layout above."""


@dataclasses.dataclass(frozen=True)
class Member:
    slug: str
    name: str
    role: str
    photos: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Cast:
    slug: str
    title: str
    description: str
    members: dict[str, Member]


def is_slug(name):
    return SLUG.fullmatch(name) is not None


def _read_yaml(path, expected_keys):
    """The mapping in a small YAML file, or {} when the file is absent."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise CastError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise CastError(f"{path}: expected a mapping of {', '.join(expected_keys)}")
    unknown = set(data) - set(expected_keys)
    if unknown:
        raise CastError(f"{path}: unknown keys {sorted(unknown)}; allowed: {', '.join(expected_keys)}")
    return {key: str(value) for key, value in data.items()}


def member_photos(member_dir):
    """The member's photo file names, sorted."""
    return tuple(sorted(p.name for p in member_dir.iterdir()
                        if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES and not p.name.startswith(".")))


def load_cast(cast_dir):
    """Read one cast folder; raise CastError naming the file and the fault."""
    cast_dir = pathlib.Path(cast_dir)
    if not is_slug(cast_dir.name):
        raise CastError(f"{cast_dir}: a cast's folder name must be a slug (a-z, 0-9, '-', '_')")
    if not (cast_dir / "cast.yml").is_file():
        raise CastError(f"{cast_dir}: missing cast.yml (title, description)")
    meta = _read_yaml(cast_dir / "cast.yml", ("title", "description"))
    members = {}
    for member_dir in sorted(p for p in cast_dir.iterdir() if p.is_dir()):
        if not is_slug(member_dir.name):
            raise CastError(f"{member_dir}: a member's folder name must be a slug (a-z, 0-9, '-', '_')")
        info = _read_yaml(member_dir / "member.yml", ("name", "role"))
        members[member_dir.name] = Member(
            slug=member_dir.name,
            name=info.get("name", member_dir.name.replace("-", " ").replace("_", " ").title()),
            role=info.get("role", ""),
            photos=member_photos(member_dir),
        )
    return Cast(slug=cast_dir.name, title=meta.get("title", cast_dir.name),
                description=meta.get("description", ""), members=members)


def load_catalog(casts_dir):
    """Every cast under casts_dir, by slug. A missing casts_dir is an empty catalog."""
    casts_dir = pathlib.Path(casts_dir)
    if not casts_dir.is_dir():
        return {}
    return {d.name: load_cast(d) for d in sorted(casts_dir.iterdir())
            if d.is_dir() and not d.name.startswith(".")}
