"""AvatarForge: rigged, textured humans from text, photos and videos.

A thin Blender extension: it talks to a separate AvatarForge backend process
over ZeroMQ and builds what it returns (armatures, skinned meshes, textures)
in the scene. It imports only bpy, pyzmq, msgpack (bundled as wheels) and its
own copy of the `protocol` package.

On register the package is also reachable as `avatarforge_addon` (whatever
the extension repository calls it), so scripts can write
`import avatarforge_addon.api as af`.
"""
from __future__ import annotations

import atexit
import sys

ALIAS = "avatarforge_addon"

try:
    from . import protocol  # noqa: F401  (vendored by build_addon.py)
except ImportError as _exc:  # pragma: no cover - only a source tree that was never built
    raise ImportError("blender_addon/protocol is missing: run `python build_addon.py --vendor` (or install a "
                      "zip from dist/ built by `python build_addon.py`)") from _exc

import bpy  # noqa: E402

from . import api, backend_process, compat, jobs, operators, panels, prefs, properties, render_setup  # noqa: E402,F401

_CLASSES = (*prefs.classes, *operators.classes, *panels.classes)


def _install_alias() -> None:
    """Make this package and its loaded submodules importable as `avatarforge_addon...`
    (the same module objects, so there is one job table and one set of clients)."""
    if __name__ == ALIAS:
        return
    sys.modules[ALIAS] = sys.modules[__name__]
    prefix = __name__ + "."
    for name, module in list(sys.modules.items()):
        if name.startswith(prefix) and module is not None:
            sys.modules[ALIAS + "." + name[len(prefix):]] = module


def _remove_alias() -> None:
    if __name__ == ALIAS:
        return
    for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
        if getattr(sys.modules[name], "__name__", "").startswith(__name__):
            del sys.modules[name]


def register() -> None:
    if compat.BLENDER < compat.MIN_BLENDER:
        raise RuntimeError(f"AvatarForge needs Blender {'.'.join(map(str, compat.MIN_BLENDER))} or newer")
    properties.register()
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    panels.register()
    jobs.register()
    operators.register()
    _install_alias()
    atexit.register(_stop_local_backend)


def _stop_local_backend() -> None:
    """A backend this Blender started must not outlive it."""
    if backend_process.LOCAL is not None:
        backend_process.LOCAL.stop()
        backend_process.LOCAL = None


def unregister() -> None:
    _remove_alias()
    atexit.unregister(_stop_local_backend)
    _stop_local_backend()
    operators.unregister()
    jobs.unregister()
    api.close()
    panels.unregister()
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
    properties.unregister()
