"""The CLIP tier of text -> motion's key-pose ranking (AvatarCLIP M1).

AvatarCLIP renders every codebook pose and ranks the renders by CLIP
similarity to the prompt. Here each key pose is drawn as a front view of the
reference skeleton with capsule limbs and a round head (a numpy rasteriser of
distance-to-segment tests: a few lines, and no renderer in our stack draws
capsules without an OpenGL context), embedded once per CLIP checkpoint and
cached with the vocabulary; a pose's score is its descriptions' text score
plus the render's standardised image score (AvatarCLIP's differential form:
prompt minus a neutral prompt) on the same spread.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..models.text_encoder import TextEncoder, differential
from .keyposes import KeyPose, grounded_trans
from .skeleton import J, JOINT_NAMES, PARENTS, forward_kinematics
from .vocabulary import Candidate, MotionVocabulary

RENDER_SIZE = 224           # CLIP's input size
IMAGE_WEIGHT = 0.5          # share of the render in a pose's score
_LIMB_RADIUS = {"spine": 0.09, "neck": 0.05, "head": 0.05, "hip": 0.07, "knee": 0.06, "ankle": 0.045,
                "foot": 0.035, "collar": 0.05, "shoulder": 0.05, "elbow": 0.04, "wrist": 0.035, "hand": 0.03}


def _radius(joint: str) -> float:
    for key, r in _LIMB_RADIUS.items():
        if key in joint:
            return r
    return 0.06


def render_pose(rotations: np.ndarray, size: int = RENDER_SIZE) -> np.ndarray:
    """(size, size, 3) uint8: the posed reference skeleton seen from the front
    (the camera on -Y looking at the body), grey capsules on white, lit by depth."""
    joints = forward_kinematics(np.asarray(rotations, np.float64), grounded_trans(rotations))
    # Front view: image x = world X (the camera looks along +Y, so the body's left is on the image's right).
    u, v, depth = joints[:, 0], joints[:, 2], joints[:, 1]
    lo = np.array([u.min(), v.min()]) - 0.15
    hi = np.array([u.max(), v.max()]) + 0.15
    centre, half = (lo + hi) / 2, max(hi - lo) / 2
    scale = (size / 2) / half                                  # pixels per metre

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (x - centre[0]) * scale + size / 2, (centre[1] - y) * scale + size / 2

    image = np.ones((size, size, 3), np.float32)
    zbuf = np.full((size, size), np.inf)
    tint = np.array([0.85, 0.75, 0.7], np.float32)
    capsules = [(int(PARENTS[j]), j, _radius(JOINT_NAMES[j])) for j in range(1, len(JOINT_NAMES))]
    for a, b, r in capsules:
        (xa, ya), (xb, yb) = to_px(u[a], v[a]), to_px(u[b], v[b])
        rp = r * scale
        # Only the pixels of the capsule's bounding box are tested.
        x0, x1 = int(max(min(xa, xb) - rp, 0)), int(min(max(xa, xb) + rp + 1, size))
        y0, y1 = int(max(min(ya, yb) - rp, 0)), int(min(max(ya, yb) + rp + 1, size))
        if x0 >= x1 or y0 >= y1:
            continue
        ys, xs = np.mgrid[y0:y1, x0:x1] + 0.5
        dx, dy = xb - xa, yb - ya
        t = np.clip(((xs - xa) * dx + (ys - ya) * dy) / max(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
        dist = np.hypot(xs - (xa + t * dx), ys - (ya + t * dy))
        z = depth[a] + t * (depth[b] - depth[a])
        box = zbuf[y0:y1, x0:x1]
        hit = (dist < rp) & (z < box)
        shade = 0.35 + 0.4 * np.sqrt(np.clip(1 - (dist / rp) ** 2, 0, 1))   # rounder look towards the axis
        box[hit] = z[hit]
        image[y0:y1, x0:x1][hit] = shade[hit][:, None] * tint
    hx, hy = to_px(u[J["head"]], v[J["head"]] + 0.06)
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    dist = np.hypot(xs - hx, ys - hy) / (0.11 * scale)
    hit = dist < 1
    image[hit] = tint * (0.5 + 0.5 * np.sqrt(np.clip(1 - dist[hit] ** 2, 0, 1)))[:, None]
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


class ClipMotionVocabulary(MotionVocabulary):
    """A vocabulary whose key poses are also ranked by CLIP on their renders."""

    def __init__(self, encoder: TextEncoder, keyposes: Sequence[KeyPose], neutral: str) -> None:
        super().__init__(encoder, keyposes, neutral)
        renders = np.stack([render_pose(kp.rotations) for kp in self.keyposes])
        self.image_emb = encoder.encode_images(renders)            # type: ignore[attr-defined]
        self.pose_items = [i for i, (_, kind) in enumerate(self.items) if kind == "pose"]

    def image_scores(self, phrase: str) -> np.ndarray:
        """Differential CLIP similarity of each key pose's render to the phrase."""
        q = differential(self.query(phrase)[None], self.neutral)[0]
        return self.image_emb @ q

    def rank(self, phrase: str, top: int = 5) -> list[Candidate]:
        ranked = super().rank(phrase, top=len(self.items))
        text = {c.name: c for c in ranked}
        img = self.image_scores(phrase)
        pose_text = np.array([text[kp.name].score for kp in self.keyposes])
        spread = float(pose_text.std()) or 1.0
        z = (img - img.mean()) / (img.std() or 1.0)
        for kp, zi in zip(self.keyposes, z):
            c = text[kp.name]
            c.score = float(c.score + IMAGE_WEIGHT * spread * zi)
        return sorted(ranked, key=lambda c: -c.score)[:top]
