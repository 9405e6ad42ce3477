"""Read what Blender holds back into numpy, for asserts."""
from __future__ import annotations

from typing import Any

import bpy
import numpy as np


def weights_of(mesh_obj: Any) -> np.ndarray:
    """(V, groups) weights read back from Blender."""
    out = np.zeros((len(mesh_obj.data.vertices), len(mesh_obj.vertex_groups)))
    for v in mesh_obj.data.vertices:
        for g in v.groups:
            out[v.index, g.group] = g.weight
    return out


def evaluated_vertices(obj: Any) -> np.ndarray:
    """(V, 3) vertex positions after modifiers (the skin), in object space."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    mesh = obj.evaluated_get(depsgraph).to_mesh()
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    obj.evaluated_get(depsgraph).to_mesh_clear()
    return co.reshape(-1, 3)
