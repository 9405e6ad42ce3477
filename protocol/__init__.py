"""AvatarForge wire protocol: messages, schemas, array codec, errors, artifacts.

Depends on msgpack and numpy only, and uses relative imports only, because the
Blender add-on carries its own copy of this package.
"""
from .artifacts import ARTIFACT_KINDS, SMPL24_JOINTS, SMPL24_PARENTS, Camera, Material, Motion, RetargetedTracks, \
    RiggedAvatar, Skeleton, artifact_from_wire
from .codec import DEFAULT_LIMITS, OUT_OF_BAND_BYTES, PROTOCOL_VERSION, Limits, decode, encode
from .errors import ErrorCode, ProtocolError
from .messages import JOB_STATES, REQUEST_TYPES, SCHEMAS, make, make_error, new_id, validate

__all__ = [
    "ARTIFACT_KINDS", "Camera", "DEFAULT_LIMITS", "JOB_STATES", "OUT_OF_BAND_BYTES", "PROTOCOL_VERSION",
    "REQUEST_TYPES", "SCHEMAS", "SMPL24_JOINTS", "SMPL24_PARENTS", "ErrorCode", "Limits", "Material", "Motion",
    "ProtocolError", "RetargetedTracks", "RiggedAvatar",
    "Skeleton", "artifact_from_wire", "decode", "encode", "make", "make_error", "new_id", "validate",
]
