"""Motion: the SMPL-24 motion core every motion source uses (DESIGN §5-6).

    skeleton    the reference skeleton, forward kinematics, the feet's sole heights
    ops         resampling, trimming, looping, concatenation, mirroring, foot contacts
    bvh, amass  motion files -> smpl24 (to_smpl: a source skeleton onto SMPL-24)
    targets     the <target rig> param; target_rigs: resolved rigs (Anny, SMPL, users');
                retarget: smpl24 -> those rigs (rigs: bone-name presets)
    vocabulary  what prompts are matched to: actions, gaits, key poses, on the side named
    from_text   text -> motion (AvatarCLIP M1/M2): keyposes, synthesis, locomotion, library
    checks      kinematic checks: does a motion do what its prompt says?

Rotation conversions are the shared core's (core/rotations.py).
"""
from .vocabulary import vocabulary_texts

__all__ = ["vocabulary_texts"]
