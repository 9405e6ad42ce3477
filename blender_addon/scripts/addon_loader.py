"""Shared start of the scripts shipped with the add-on (batch, demo, examples).

They run as `blender -b [file.blend] --python <script> -- <args>` or with the
bpy wheel as `python <script> <args>`. `load_addon()` returns the add-on
package as `avatarforge_addon`: the enabled extension if there is one, else
the package this script lives in, registered on the spot (so a batch machine
needs no preferences set up).
"""
from __future__ import annotations

import atexit
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ALIAS = "avatarforge_addon"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def script_args() -> list[str]:
    """The script's own arguments: after `--` under the blender binary (none
    without it), all of argv after the script with the bpy wheel."""
    import bpy

    if "--" in sys.argv:
        return sys.argv[sys.argv.index("--") + 1:]
    return sys.argv[1:] if not bpy.app.binary_path else []


def load_addon() -> ModuleType:
    if ALIAS in sys.modules:
        return sys.modules[ALIAS]
    import bpy

    for addon in bpy.context.preferences.addons:   # enabled as an extension: its register() made the alias
        if addon.module.rsplit(".", 1)[-1] == "avatarforge":
            importlib.import_module(addon.module)
            if ALIAS in sys.modules:
                return sys.modules[ALIAS]
    if not (PACKAGE_DIR / "protocol").is_dir():
        raise SystemExit(f"{PACKAGE_DIR}/protocol is missing: run `python build_addon.py --vendor` in the "
                         "checkout, or install a zip from dist/")
    spec = importlib.util.spec_from_file_location(ALIAS, PACKAGE_DIR / "__init__.py",
                                                  submodule_search_locations=[str(PACKAGE_DIR)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[ALIAS] = module
    spec.loader.exec_module(module)
    module.register()
    # Unregister before the interpreter exits: the Blender 4.2 bpy module
    # crashes at exit while Python classes are still registered.
    atexit.register(module.unregister)
    return module
