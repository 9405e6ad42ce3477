"""Motion: the SMPL-24 motion core every motion source uses (DESIGN §5-6).

    skeleton   the reference skeleton and forward kinematics
    rotations  axis-angle / quaternion / matrix conversions (roma), in one place
    ops        resampling, trimming, looping, concatenation, mirroring
    bvh, amass motion files -> smpl24
    retarget   smpl24 -> Anny, SMPL-family and user rigs
    keyposes, synthesis, locomotion, library   text -> motion (AvatarCLIP M1/M2)
"""
