"""build_addon.py: zips per Blender line, manifests, the wheel cache, clear errors.
Runs in any Python 3.11+ (no bpy): wheels come from a cache filled with stand-ins."""
from __future__ import annotations

import tomllib
import zipfile
from pathlib import Path

import pytest

import build_addon as b

# Real wheel file names for each line and platform (a universal2 pyzmq serves both macOS).
NAMES = {
    "cp311": {
        "linux-x64": ["pyzmq-{z}-cp311-cp311-manylinux_2_26_x86_64.manylinux_2_28_x86_64.whl",
                      "msgpack-{m}-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"],
        "windows-x64": ["pyzmq-{z}-cp311-cp311-win_amd64.whl", "msgpack-{m}-cp311-cp311-win_amd64.whl"],
        "macos-x64": ["pyzmq-{z}-cp311-cp311-macosx_10_15_universal2.whl",
                      "msgpack-{m}-cp311-cp311-macosx_10_9_x86_64.whl"],
        "macos-arm64": ["pyzmq-{z}-cp311-cp311-macosx_10_15_universal2.whl",
                        "msgpack-{m}-cp311-cp311-macosx_11_0_arm64.whl"],
    },
    "cp313": {
        "linux-x64": ["pyzmq-{z}-cp312-abi3-manylinux_2_28_x86_64.whl",
                      "msgpack-{m}-cp313-cp313-manylinux2014_x86_64.whl"],
        "windows-x64": ["pyzmq-{z}-cp312-abi3-win_amd64.whl", "msgpack-{m}-cp313-cp313-win_amd64.whl"],
        "macos-x64": ["pyzmq-{z}-cp312-abi3-macosx_10_15_universal2.whl",
                      "msgpack-{m}-cp313-cp313-macosx_10_13_x86_64.whl"],
        "macos-arm64": ["pyzmq-{z}-cp312-abi3-macosx_10_15_universal2.whl",
                        "msgpack-{m}-cp313-cp313-macosx_11_0_arm64.whl"],
    },
}


@pytest.fixture()
def cache(tmp_path: Path) -> Path:
    root = tmp_path / "wheels"
    for cp, platforms in NAMES.items():
        for platform, names in platforms.items():
            (root / cp / platform).mkdir(parents=True)
            for name in names:
                name = name.format(z=b.WHEELS["pyzmq"], m=b.WHEELS["msgpack"])
                (root / cp / platform / name).write_bytes(b"stand-in wheel")
    return root


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """pip can reach no index: a build must then use the cache or say what is missing."""
    monkeypatch.setenv("PIP_INDEX_URL", (tmp_path / "no-index").as_uri())
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_NO_INDEX", "0")


def read_zip(path: Path) -> tuple[dict, set[str]]:
    with zipfile.ZipFile(path) as z:
        return tomllib.loads(z.read("blender_manifest.toml").decode()), set(z.namelist())


@pytest.mark.parametrize("line", b.LINES, ids=lambda line: line.name)
def test_each_line_builds_from_the_cache_offline(line: b.Line, cache: Path, tmp_path: Path, offline: None) -> None:
    path = b.build_line(line, tmp_path / "dist", cache, validate=False)
    assert b.validate_zip(path, line, use_blender=False) == "schema check"
    manifest, names = read_zip(path)
    assert manifest["blender_version_min"] == line.blender_min
    assert manifest.get("blender_version_max") == line.blender_max
    assert manifest["platforms"] == ["linux-x64", "windows-x64", "macos-x64", "macos-arm64"]
    assert len(manifest["wheels"]) == 7      # pyzmq universal2 serves both macOS platforms once
    assert all(w[2:] in names for w in manifest["wheels"])
    assert all(line.cp in w or "abi3" in w for w in manifest["wheels"])
    assert {"__init__.py", "api.py", "importers/rigged_avatar.py", "protocol/client.py",
            "scripts/batch_generate.py", "examples/generate_bodies.py"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert manifest["permissions"]["network"] and manifest["permissions"]["files"]
    assert "build" not in manifest


def test_missing_wheel_gives_an_actionable_error(tmp_path: Path, offline: None) -> None:
    with pytest.raises(b.BuildError, match=r"could not fetch the pyzmq==.* wheel for linux-x64, Python 3\.11.*"
                                           r"Check access to PyPI .* or put the wheel into"):
        b.fetch_wheel("pyzmq", b.WHEELS["pyzmq"], b.LINES[0], "linux-x64", tmp_path / "empty-cache")


def test_schema_check_refuses_what_blender_would(cache: Path, tmp_path: Path) -> None:
    line = b.LINES[0]
    manifest = b.line_manifest(tomllib.loads((b.ADDON_SRC / "blender_manifest.toml").read_text()), line,
                               b.fetch_wheels(line, cache))
    names = {w[2:] for w in manifest["wheels"]} | {"__init__.py"}
    assert b.validate_manifest(manifest, names, line) == []

    wrong_python = dict(manifest, wheels=manifest["wheels"] + ["./wheels/msgpack-1.0-cp313-cp313-win_amd64.whl"])
    assert any("not for Python 3.11" in e for e in
               b.validate_manifest(wrong_python, names | {"wheels/msgpack-1.0-cp313-cp313-win_amd64.whl"}, line))
    no_mac = dict(manifest, wheels=[w for w in manifest["wheels"] if "macosx" not in w])
    assert any("no pyzmq wheel for ['macos-arm64', 'macos-x64']" in e for e in b.validate_manifest(no_mac, names, line))
    bad_reason = dict(manifest, permissions={"network": "Talks to the backend."})
    assert any("permission 'network'" in e for e in b.validate_manifest(bad_reason, names, line))
    bad_range = dict(manifest, blender_version_max="4.1.0")
    assert any("blender_version_max must be above" in e for e in b.validate_manifest(bad_range, names, line))


def test_protocol_copy_must_use_relative_imports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "codec.py").write_text("from avatarforge.protocol.errors import ProtocolError\n")
    monkeypatch.setattr(b, "PROTOCOL_SRC", tmp_path)
    with pytest.raises(b.BuildError, match="relative imports"):
        b.protocol_files()
