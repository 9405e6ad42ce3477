"""Understanding prompts: validation, and what a prompt says about a body's
shape (AvatarCLIP S1), its appearance (S2, StyleAvatar3D styles) and motion
(M1), each ranked with a TextEncoder (models/text_encoder.py)."""
