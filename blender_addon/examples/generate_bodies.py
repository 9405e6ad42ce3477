"""Example for pipeline TDs: a line-up of bodies through the AvatarForge Python API.

    blender -b --python generate_bodies.py -- out/lineup.blend      # add-on installed and enabled
    python generate_bodies.py out/lineup.blend                      # the bpy wheel, from a built add-on

The backend must be running (`avatarforge serve`); its address comes from the
add-on preferences, or $AVATARFORGE_ADDRESS, or tcp://127.0.0.1:5757.

The API in three lines:

    import avatarforge_addon.api as af
    rig, mesh = af.generate_body(phenotypes={"gender": 0.2, "height": 0.8})
    rig.pose.bones["upperarm01.L"].rotation_quaternion = (0.92, 0.0, 0.0, -0.38)   # verbatim (DESIGN §6)

Everything blocks and works in background mode. Other calls:
    af.connect()                         -> the backend's welcome (version, pipelines, tiers)
    job = af.submit("body", af.body_params(phenotypes={...}, seed=3))
    job.cancel(); job.status(); artifacts = job.wait(on_progress=af.print_progress)
    af.import_artifacts(artifacts, name="Hero") -> [ImportedAvatar(rig, mesh, collection)]
    af.generate(job, params)             -> any job, imported
Errors: af.BackendUnavailable (nothing answers), af.ProtocolError (.code,
.message: the backend refused or the job failed), af.ImportFailed.
"""
from __future__ import annotations

import os
import sys

try:
    import avatarforge_addon.api as af   # the add-on is enabled (it registers this name)
except ImportError:                      # not enabled: load the add-on this example ships with
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
    from addon_loader import load_addon, script_args
    af = load_addon().api
else:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(af.__file__)), "scripts"))
    from addon_loader import script_args

import bpy  # noqa: E402

LINE_UP = {
    "Slim": {"gender": 0.1, "weight": 0.2, "height": 0.6},
    "Strong": {"gender": 0.3, "muscle": 0.95, "weight": 0.7},
    "Tall": {"gender": 0.9, "height": 1.0, "proportions": 0.8},
}


def main() -> int:
    out = os.path.abspath((script_args() or ["lineup.blend"])[0])
    welcome = af.connect()
    print(f"backend {welcome['server_version']}; body tiers: {sorted(welcome['pipelines']['body']['tiers'])}")
    bpy.data.batch_remove(list(bpy.data.objects))     # start from an empty scene
    for i, (name, phenotypes) in enumerate(LINE_UP.items()):
        rig, mesh = af.generate_body(phenotypes=phenotypes, name=name, texture_size=512,
                                     on_progress=af.print_progress)
        rig.location.x = (i - 1) * 0.8                 # side by side, 80 cm apart
        print(f"{name}: {rig.name} with {len(rig.data.bones)} bones, {mesh.name} "
              f"with {len(mesh.data.vertices)} vertices")
    bpy.ops.wm.save_as_mainfile(filepath=out, compress=True)
    print(f"saved {out}")
    af.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
