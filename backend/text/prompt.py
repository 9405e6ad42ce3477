"""Prompt validation shared by every text-driven job."""
from __future__ import annotations

import unicodedata
from typing import Any

from avatarforge.protocol import ErrorCode, ProtocolError

# What every text reader compares a prompt against (AvatarCLIP's neutral text): the prompt
# that says nothing about a body, an appearance or a motion.
NEUTRAL_PROMPT = "a person"
MAX_PROMPT_CHARS = 500     # CLIP reads 77 tokens; a prompt is a sentence or two, not a document
# Format characters are fine (emoji are joined with U+200D) except the bidi
# overrides, which can make a prompt display differently from what it says.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_prompt(value: Any, field: str = "prompt") -> str:
    """The prompt as NFC text with runs of whitespace collapsed.

    Raises BAD_REQUEST when it is not a string, is empty, holds control
    characters, or is longer than MAX_PROMPT_CHARS. Any script is accepted
    (encoders see the text; words they do not know simply score low)."""
    if not isinstance(value, str):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: must be text, got {type(value).__name__}",
                            field=field)
    text = " ".join(unicodedata.normalize("NFC", value).split())
    if not text:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: is empty; describe the person, "
                            "e.g. \"a tall, skinny old man in a red hoodie\"", field=field)
    if len(text) > MAX_PROMPT_CHARS:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: is {len(text)} characters; keep it to "
                            f"{MAX_PROMPT_CHARS} (a sentence or two)", field=field, limit=MAX_PROMPT_CHARS)
    if any(unicodedata.category(c) in ("Cc", "Cs", "Co") or c in BIDI_CONTROLS for c in text):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: contains control or private-use characters",
                            field=field)
    return text
