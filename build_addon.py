#!/usr/bin/env python3
"""Builds the installable AvatarForge extension zips into dist/.

    python build_addon.py                 # every Blender line -> dist/*.zip
    python build_addon.py --line 4.2-5.0  # one line
    python build_addon.py --vendor        # only copy protocol/ into blender_addon/protocol (source-tree use)

One zip per Blender line whose Python differs (3.11 for Blender 4.2-5.0, 3.13
for 5.1+), each with `blender_version_min/max` set so Blender never installs
wheels built for another Python. Each zip carries unmodified pyzmq and msgpack
wheels for Linux x86_64, Windows x64 and macOS (Intel, Apple silicon), listed
in the manifest's `wheels` and `platforms`, and a copy of `protocol/`.

Wheels are fetched once with `pip download` and cached under
~/.cache/avatarforge/wheels (or --cache / $AVATARFORGE_WHEEL_CACHE), so later
builds need no network. The manifest of every zip is validated: by Blender
(`blender --command extension validate`) when a Blender binary or the bpy
wheel's extension tool is found, and always by the schema check here.
"""
from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

REPO = Path(__file__).resolve().parent
ADDON_SRC = REPO / "blender_addon"
PROTOCOL_SRC = REPO / "protocol"
DEFAULT_CACHE = Path(os.environ.get("AVATARFORGE_WHEEL_CACHE", Path.home() / ".cache" / "avatarforge" / "wheels"))

# Pinned so a cached build is reproducible and needs no index look-up.
WHEELS = {"pyzmq": "27.3.0", "msgpack": "1.2.4"}

# Blender platform -> pip platform tags to ask for (pip also accepts older
# manylinux / macOS tags and universal2 for these).
PLATFORMS: dict[str, list[str]] = {
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-x64": ["macosx_11_0_x86_64"],
    "macos-arm64": ["macosx_11_0_arm64"],
}

PERMISSIONS = {"files", "network", "clipboard", "camera", "microphone"}
ADDON_TAGS = {
    "3D View", "Add Curve", "Add Mesh", "Animation", "Bake", "Camera", "Compositing", "Development",
    "Game Engine", "Geometry Nodes", "Grease Pencil", "Import-Export", "Lighting", "Material", "Modeling",
    "Mesh", "Node", "Object", "Paint", "Pipeline", "Physics", "Render", "Rigging", "Scene", "Sculpt",
    "Sequencer", "System", "Text Editor", "Tracking", "User Interface", "UV",
}
EXCLUDE_DIRS = {"__pycache__", ".pytest_cache", "wheels", "protocol"}
EXCLUDE_SUFFIXES = {".pyc", ".pyo", ".blend1"}


@dataclass(frozen=True)
class Line:
    """A range of Blender releases sharing one Python."""
    name: str
    python: str             # "3.11"
    blender_min: str
    blender_max: str | None  # exclusive, as Blender's manifest means it

    @property
    def cp(self) -> str:
        return "cp" + self.python.replace(".", "")


LINES = (
    Line("4.2-5.0", "3.11", "4.2.0", "5.1.0"),
    Line("5.1-up", "3.13", "5.1.0", None),
)


class BuildError(Exception):
    """The build cannot go on; the message says what to do."""


# -- protocol copy ------------------------------------------------------------
ABSOLUTE_IMPORT = re.compile(r"^\s*(from|import)\s+(avatarforge|protocol)\b", re.MULTILINE)


def protocol_files() -> list[Path]:
    files = sorted(PROTOCOL_SRC.glob("*.py"))
    if not files:
        raise BuildError(f"no protocol sources in {PROTOCOL_SRC}")
    for f in files:
        if ABSOLUTE_IMPORT.search(f.read_text()):
            raise BuildError(f"{f} imports the protocol by an absolute name; the add-on's "
                             "copy only works with relative imports (from .codec import ...)")
    return files


def vendor_protocol(addon_dir: Path) -> Path:
    """Copy protocol/*.py into addon_dir/protocol (replacing an older copy)."""
    dest = addon_dir / "protocol"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for f in protocol_files():
        shutil.copy2(f, dest / f.name)
    return dest


# -- wheels -------------------------------------------------------------------
def _cached(cache: Path, dist: str, version: str) -> list[Path]:
    return sorted(cache.glob(f"{dist}-{version}-*.whl")) if cache.is_dir() else []


def fetch_wheel(dist: str, version: str, line: Line, platform: str, cache_root: Path) -> Path:
    """The wheel of dist==version for a Blender platform and Python, from the
    cache or downloaded into it."""
    cache = cache_root / line.cp / platform
    found = _cached(cache, dist, version)
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "--no-deps", "--implementation", "cp", "--python-version", line.python,
               "--dest", str(cache)]
        for tag in PLATFORMS[platform]:
            cmd += ["--platform", tag]
        cmd.append(f"{dist}=={version}")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        found = _cached(cache, dist, version)
        if proc.returncode != 0 or not found:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise BuildError(
                f"could not fetch the {dist}=={version} wheel for {platform}, Python {line.python}: "
                f"{' / '.join(detail) or 'pip found no matching wheel'}. Check access to PyPI (or set "
                f"PIP_INDEX_URL to a mirror), or put the wheel into {cache} by hand.")
    if len(found) > 1:
        raise BuildError(f"several {dist} {version} wheels in {cache}: {[f.name for f in found]}; keep one")
    return found[0]


def fetch_wheels(line: Line, cache_root: Path) -> list[Path]:
    """Every wheel a zip for `line` carries (a universal2 wheel serves both macOS platforms once)."""
    wheels: dict[str, Path] = {}
    for platform in PLATFORMS:
        for dist, version in WHEELS.items():
            w = fetch_wheel(dist, version, line, platform, cache_root)
            wheels.setdefault(w.name, w)
    return [wheels[k] for k in sorted(wheels)]


# -- manifest -----------------------------------------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + "".join(f"  {_toml_value(v)},\n" for v in value) + "]"
    raise BuildError(f"cannot write {type(value).__name__} to TOML")


def dump_toml(data: dict[str, Any]) -> str:
    """TOML for the manifest's shapes: scalars and lists, then one level of tables."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for key, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{key}]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def line_manifest(base: dict[str, Any], line: Line, wheels: Iterable[Path]) -> dict[str, Any]:
    """The source manifest with this line's Blender range, platforms and wheels."""
    out = {k: v for k, v in base.items() if k != "build"}
    out["blender_version_min"] = line.blender_min
    if line.blender_max:
        out["blender_version_max"] = line.blender_max
    out["platforms"] = list(PLATFORMS)
    out["wheels"] = [f"./wheels/{w.name}" for w in wheels]
    # Keep tables last so the TOML stays valid.
    return {**{k: v for k, v in out.items() if not isinstance(v, dict)},
            **{k: v for k, v in out.items() if isinstance(v, dict)}}


VERSION = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")
BLENDER_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
IDNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
WHEEL_NAME = re.compile(r"^(?P<dist>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?"
                        r"-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$")


def wheel_platforms(platform_tag: str) -> set[str]:
    """Blender platforms a wheel's platform tag serves."""
    out = set()
    for tag in platform_tag.split("."):
        if "universal2" in tag:
            out |= {"macos-x64", "macos-arm64"}
        elif tag.startswith("macosx") and tag.endswith("x86_64"):
            out.add("macos-x64")
        elif tag.startswith("macosx") and tag.endswith("arm64"):
            out.add("macos-arm64")
        elif "linux" in tag and tag.endswith("x86_64"):
            out.add("linux-x64")
        elif tag == "win_amd64":
            out.add("windows-x64")
    return out


def wheel_serves_python(py_tag: str, abi_tag: str, python: str) -> bool:
    major, minor = (int(x) for x in python.split("."))
    for tag in py_tag.split("."):
        m = re.fullmatch(r"cp(\d)(\d+)", tag)
        if m and abi_tag == "abi3" and (int(m[1]), int(m[2])) <= (major, minor):
            return True
        if m and (int(m[1]), int(m[2])) == (major, minor):
            return True
        if tag in (f"py{major}", "py2.py3"):
            return True
    return False


def validate_manifest(data: dict[str, Any], names: set[str], line: Line | None = None) -> list[str]:
    """Problems with a manifest and the files of its zip (`names`); [] when valid.
    Mirrors the rules of Blender's extension validator that can bite us."""
    errors: list[str] = []
    required = {"schema_version": str, "id": str, "version": str, "name": str, "tagline": str,
                "maintainer": str, "type": str, "license": list, "blender_version_min": str}
    for key, typ in required.items():
        if not isinstance(data.get(key), typ):
            errors.append(f"'{key}' is missing or not a {typ.__name__}")
    if errors:
        return errors
    if not IDNAME.match(data["id"]):
        errors.append(f"id {data['id']!r} must be a Python identifier (letters, digits, underscores)")
    for key in ("schema_version", "version"):
        if not VERSION.match(data[key]):
            errors.append(f"{key} {data[key]!r} is not semantic (X.Y.Z)")
    if len(data["tagline"]) > 64 or data["tagline"].endswith((".", "!", "?")):
        errors.append("tagline must be at most 64 characters and not end with punctuation")
    if data["type"] != "add-on":
        errors.append(f"type must be 'add-on', got {data['type']!r}")
    if not data["license"] or not all(isinstance(x, str) and x.startswith("SPDX:") for x in data["license"]):
        errors.append("license entries must be SPDX identifiers like 'SPDX:Apache-2.0'")
    for key in ("blender_version_min", "blender_version_max"):
        if key in data and not BLENDER_VERSION.match(str(data[key])):
            errors.append(f"{key} {data[key]!r} must look like 4.2.0")
    if "blender_version_max" in data:
        lo = tuple(map(int, data["blender_version_min"].split(".")))
        hi = tuple(map(int, data["blender_version_max"].split(".")))
        if hi <= lo:
            errors.append("blender_version_max must be above blender_version_min")
    for tag in data.get("tags", []):
        if tag not in ADDON_TAGS:
            errors.append(f"tag {tag!r} is not one Blender knows for add-ons")
    perms = data.get("permissions", {})
    if not isinstance(perms, dict):
        errors.append("permissions must be a table of name = reason")
    else:
        for name, reason in perms.items():
            if name not in PERMISSIONS:
                errors.append(f"permission {name!r} is not one of {sorted(PERMISSIONS)}")
            elif not isinstance(reason, str) or not reason.strip() or len(reason) > 64 or reason.endswith("."):
                errors.append(f"permission {name!r} needs a reason of at most 64 characters, not ending in '.'")
    platforms = data.get("platforms", [])
    unknown = set(platforms) - set(PLATFORMS) - {"linux-arm64", "windows-arm64"}
    if unknown:
        errors.append(f"unknown platforms {sorted(unknown)}")
    covered: dict[str, set[str]] = {}
    for entry in data.get("wheels", []):
        if not entry.startswith("./") or "\\" in entry or '"' in entry:
            errors.append(f"wheel path {entry!r} must be relative (./wheels/...) with forward slashes")
            continue
        if entry[2:] not in names:
            errors.append(f"wheel {entry!r} is listed but not in the zip")
        m = WHEEL_NAME.match(os.path.basename(entry))
        if not m:
            errors.append(f"{os.path.basename(entry)!r} is not a wheel file name")
            continue
        if line is not None and not wheel_serves_python(m["py"], m["abi"], line.python):
            errors.append(f"{m.string} is not for Python {line.python} (Blender {line.name} would break)")
        plats = wheel_platforms(m["plat"])
        if not plats & set(platforms):
            errors.append(f"{m.string} serves none of the listed platforms")
        for p in plats:
            covered.setdefault(m["dist"].lower(), set()).add(p)
    for dist in {m.lower() for m in WHEELS} if data.get("wheels") else set():
        missing = set(platforms) - covered.get(dist, set())
        if missing:
            errors.append(f"no {dist} wheel for {sorted(missing)}")
    if "__init__.py" not in names:
        errors.append("the zip has no __init__.py at its root")
    return errors


def blender_validators() -> list[list[str]]:
    """Commands running Blender's own extension validator: a `blender` binary
    ($BLENDER or PATH), and the extension tool of each bpy wheel environment
    in the checkout (4.2 and 5.0 validate slightly differently)."""
    found = []
    blender = os.environ.get("BLENDER") or shutil.which("blender")
    if blender:
        found.append([blender, "--factory-startup", "--command", "extension", "validate"])
    for venv in (".venv-blender", ".venv-blender-4.2"):
        for script in sorted((REPO / venv).glob("lib/python3*/site-packages/bpy/*/scripts/addons_core/"
                                                "bl_pkg/cli/blender_ext.py")):
            found.append([sys.executable, str(script), "validate"])
    return found


def _validator_name(cmd: list[str]) -> str:
    if cmd[0] == sys.executable:  # .../bpy/<version>/scripts/addons_core/bl_pkg/cli/blender_ext.py
        return f"bpy {Path(cmd[1]).parents[4].name} blender_ext"
    return Path(cmd[0]).name


def validate_zip(zip_path: Path, line: Line | None = None, use_blender: bool = True) -> str:
    """Raise BuildError if the zip's manifest is invalid; returns what validated it."""
    with zipfile.ZipFile(zip_path) as z:
        names = set(z.namelist())
        if "blender_manifest.toml" not in names:
            raise BuildError(f"{zip_path.name} has no blender_manifest.toml at its root")
        data = tomllib.loads(z.read("blender_manifest.toml").decode())
    errors = validate_manifest(data, names, line)
    if errors:
        raise BuildError(f"{zip_path.name}: invalid manifest:\n  " + "\n  ".join(errors))
    used = ["schema check"]
    for cmd in blender_validators() if use_blender else []:
        proc = subprocess.run(cmd + [str(zip_path)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(f"{zip_path.name}: Blender's validator ({_validator_name(cmd)}) refused it:\n"
                             f"{proc.stdout}{proc.stderr}")
        used.append(_validator_name(cmd))
    return ", ".join(used)


# -- zips ---------------------------------------------------------------------
def addon_sources() -> list[Path]:
    out = []
    for path in sorted(ADDON_SRC.rglob("*")):
        rel = path.relative_to(ADDON_SRC)
        if path.is_dir() or rel.parts[0] in EXCLUDE_DIRS or set(rel.parts) & EXCLUDE_DIRS:
            continue
        if path.suffix in EXCLUDE_SUFFIXES or path.name == "blender_manifest.toml":
            continue
        out.append(path)
    return out


def _write(z: zipfile.ZipFile, arcname: str, data: bytes) -> None:
    info = zipfile.ZipInfo(arcname, date_time=(2024, 1, 1, 0, 0, 0))  # reproducible zips
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    z.writestr(info, data)


def zip_name(base: dict[str, Any], line: Line) -> str:
    return f"{base['id']}-{base['version']}-blender{line.name}.zip"


def build_line(line: Line, out_dir: Path, cache: Path, validate: bool = True) -> Path:
    base = tomllib.loads((ADDON_SRC / "blender_manifest.toml").read_text())
    wheels = fetch_wheels(line, cache)
    manifest = line_manifest(base, line, wheels)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / zip_name(base, line)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        _write(z, "blender_manifest.toml", dump_toml(manifest).encode())
        for f in addon_sources():
            _write(z, f.relative_to(ADDON_SRC).as_posix(), f.read_bytes())
        for f in protocol_files():
            _write(z, f"protocol/{f.name}", f.read_bytes())
        for w in wheels:
            _write(z, f"wheels/{w.name}", w.read_bytes())
    tmp = target.with_suffix(".zip.part")
    tmp.write_bytes(buf.getvalue())
    if validate:
        try:
            validate_zip(tmp, line)
        except BuildError:
            tmp.unlink()
            raise
    tmp.replace(target)
    return target


def line_for_python(version: tuple[int, int]) -> Line:
    for line in LINES:
        if line.python == f"{version[0]}.{version[1]}":
            return line
    raise BuildError(f"no Blender line uses Python {version[0]}.{version[1]}; lines: "
                     + ", ".join(f"{line.name} (Python {line.python})" for line in LINES))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--line", action="append", choices=[line.name for line in LINES],
                        help="build only this Blender line (repeatable; default: all)")
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="where the zips go (default dist/)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"wheel cache (default {DEFAULT_CACHE})")
    parser.add_argument("--vendor", action="store_true",
                        help="only copy protocol/ into blender_addon/protocol for running from the source tree")
    parser.add_argument("--no-blender-validate", action="store_true",
                        help="validate with the schema check only, not Blender's validator")
    args = parser.parse_args(argv)
    try:
        if args.vendor:
            print(f"copied protocol into {vendor_protocol(ADDON_SRC).relative_to(REPO)}")
            return 0
        for line in [x for x in LINES if not args.line or x.name in args.line]:
            path = build_line(line, args.out, args.cache, validate=False)
            how = validate_zip(path, line, use_blender=not args.no_blender_validate)
            print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}  "
                  f"(Blender {line.blender_min}..{line.blender_max or ''}, Python {line.python}, "
                  f"{path.stat().st_size // 1024} KiB; valid: {how})")
    except BuildError as exc:
        print(f"build_addon: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
