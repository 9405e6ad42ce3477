"""Bone-name maps from common rigs to SMPL's 24 joints (target bone -> SMPL joint).

Each preset maps the bones that correspond to an SMPL joint; bones between
mapped ones (Anny's spine05, shoulder01, upperarm02...) stay unmapped and are
driven with identity by the retargeter, so they follow their parent. Side
conventions: ".L"/"_l"/"Left" are the body's left (our +X).

Mixamo bones are matched with or without a namespace prefix ("mixamorig:",
"mixamorig1:", any "<ns>:"), as Mixamo exports vary.
"""
from __future__ import annotations

from typing import Iterable

from avatarforge.protocol.limits import AUTO_RIG_PRESET as AUTO  # noqa: F401 (rigs.AUTO: targets, target_rigs)
from avatarforge.protocol.limits import RIG_PRESETS as PRESETS

_SIDES = (("left", "L", "l", "Left"), ("right", "R", "r", "Right"))


def _sided(template: dict[str, str]) -> dict[str, str]:
    """Expand {"upperarm01.{S}": "{side}_shoulder"} into both sides; keys use
    {S} (L/R), {s} (l/r) or {Side} (Left/Right)."""
    out = {}
    for side, big, small, word in _SIDES:
        for bone, joint in template.items():
            out[bone.format(S=big, s=small, Side=word)] = joint.format(side=side)
    return out


# Anny (104 bones): the spine has five segments (spine05 at the pelvis up to
# spine01 at the chest, which carries the clavicles and neck as SMPL's spine3
# does). Hands and feet: fingers/toes stay at rest (SMPL has no finger joints).
ANNY = {"root": "pelvis", "spine04": "spine1", "spine03": "spine2", "spine01": "spine3", "neck01": "neck",
        "head": "head", **_sided({
            "upperleg01.{S}": "{side}_hip", "lowerleg01.{S}": "{side}_knee", "foot.{S}": "{side}_ankle",
            "clavicle.{S}": "{side}_collar", "upperarm01.{S}": "{side}_shoulder",
            "lowerarm01.{S}": "{side}_elbow", "wrist.{S}": "{side}_wrist"})}

# SMPL / SMPL-H / SMPL-X armatures (the body job's joint names): the 22 body
# joints share SMPL's names; SMPL's own hand joints are left_hand/right_hand.
SMPL = {name: name for name in (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand",
    "right_hand")}

MIXAMO = {"Hips": "pelvis", "Spine": "spine1", "Spine1": "spine2", "Spine2": "spine3", "Neck": "neck",
          "Head": "head", **_sided({
              "{Side}UpLeg": "{side}_hip", "{Side}Leg": "{side}_knee", "{Side}Foot": "{side}_ankle",
              "{Side}ToeBase": "{side}_foot", "{Side}Shoulder": "{side}_collar", "{Side}Arm": "{side}_shoulder",
              "{Side}ForeArm": "{side}_elbow", "{Side}Hand": "{side}_wrist"})}

# Rigify's deform bones: DEF-spine is the pelvis segment, .001-.003 the torso,
# .004/.005 the neck, .006 the head; arms and legs split into two twist bones
# each (the .001 halves stay unmapped and follow).
RIGIFY = {"DEF-spine": "pelvis", "DEF-spine.001": "spine1", "DEF-spine.002": "spine2", "DEF-spine.003": "spine3",
          "DEF-spine.004": "neck", "DEF-spine.006": "head", **_sided({
              "DEF-thigh.{S}": "{side}_hip", "DEF-shin.{S}": "{side}_knee", "DEF-foot.{S}": "{side}_ankle",
              "DEF-toe.{S}": "{side}_foot", "DEF-shoulder.{S}": "{side}_collar",
              "DEF-upper_arm.{S}": "{side}_shoulder", "DEF-forearm.{S}": "{side}_elbow",
              "DEF-hand.{S}": "{side}_wrist"})}

# Unreal Engine mannequin (UE4/UE5): "root" at the floor stays unmapped.
UNREAL = {"pelvis": "pelvis", "spine_01": "spine1", "spine_02": "spine2", "spine_03": "spine3",
          "neck_01": "neck", "head": "head", **_sided({
              "thigh_{s}": "{side}_hip", "calf_{s}": "{side}_knee", "foot_{s}": "{side}_ankle",
              "ball_{s}": "{side}_foot", "clavicle_{s}": "{side}_collar", "upperarm_{s}": "{side}_shoulder",
              "lowerarm_{s}": "{side}_elbow", "hand_{s}": "{side}_wrist"})}

PRESET_MAPS: dict[str, dict[str, str]] = {"anny": ANNY, "smpl": SMPL, "mixamo": MIXAMO, "rigify": RIGIFY,
                                          "unreal": UNREAL}


def _strip_namespace(name: str) -> str:
    return name.rsplit(":", 1)[-1]


def preset_map(preset: str, bone_names: Iterable[str]) -> dict[str, str]:
    """{bone name as the rig spells it: SMPL joint} for the bones of `bone_names` the preset knows."""
    table = PRESET_MAPS[preset]
    out = {}
    for bone in bone_names:
        key = _strip_namespace(bone) if preset == "mixamo" else bone
        if key in table:
            out[bone] = table[key]
    return out


def best_preset(bone_names: Iterable[str]) -> tuple[str, dict[str, str]]:
    """The preset that maps the most distinct SMPL joints of this rig (ties: PRESETS order)."""
    names = list(bone_names)
    scored = [(len(set(preset_map(p, names).values())), -i, p) for i, p in enumerate(PRESETS)]
    _, _, best = max(scored)
    return best, preset_map(best, names)
