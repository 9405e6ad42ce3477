"""What a prompt says about an avatar's appearance (AvatarCLIP S2, embedded tier).

The prompt is cut into phrases by a light chunker (commas, "and", "with",
"wearing", "in"...), and each phrase's word n-grams are embedded by the text
encoder. Meaning comes from similarity, not from keyword matching: every n-gram
is classified by its nearest vocabulary entry across categories (garments,
colours, patterns, hair, skin tones, styles, and a reject class of body/person
words), and only kept when it beats a threshold and the neutral phrase
("a person") by a margin. So "trainers", "jumper" or a misspelling land on the
nearest garment, a colour the list lacks lands on its nearest colour, and
"banana" lands nowhere. Vocabulary embeddings are computed once per encoder.

Within a phrase, colours and patterns belong to the garment they precede
("a red and white striped shirt": red shirt, white stripes); a phrase with a
colour and no garment passes its colour on to the next garment, or to the
previous one when none follows ("a shirt in red").
"""
from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ..core.appearance import RGB, SLOTS, Appearance, Coverage, Garment
from ..core.sources import digest_of, source_digest
from ..models.text_encoder import TextEncoder
from .prompt import NEUTRAL_PROMPT
from .styles import DESCRIPTIONS as STYLE_DESCRIPTIONS, StyleChoice, choose_style


# Per category: minimum similarity to the nearest entry, and minimum lead over
# the neutral phrase's similarity to that entry. Calibrated on MiniLM: exact and
# near-synonym phrases score 0.6-1.0, unrelated words 0.2-0.5.
THRESHOLDS = {"garment": (0.6, 0.2), "colour": (0.62, 0.2), "pattern": (0.62, 0.2), "hair": (0.6, 0.2),
              "hair_colour": (0.62, 0.2), "skin": (0.62, 0.2), "style": (0.62, 0.2), "other": (0.0, -1.0)}
MAX_NGRAM = 3


@dataclass(frozen=True)
class GarmentKind:
    """A vocabulary entry: where the garment sits and how much it covers."""
    name: str
    slot: str
    aliases: tuple[str, ...]
    colour: str                       # default colour name (a COLOURS key)
    coverage: Coverage = Coverage()
    also: str | None = None           # a companion garment of the same colour (a suit's trousers)


def _g(name: str, slot: str, aliases: tuple[str, ...], colour: str, also: str | None = None,
       **coverage: Any) -> GarmentKind:
    return GarmentKind(name, slot, (name,) + aliases, colour, Coverage(**coverage), also)


GARMENTS: tuple[GarmentKind, ...] = (
    _g("t-shirt", "top", ("tshirt", "tee", "tee shirt"), "white", sleeve=0.32, torso="full"),
    _g("long-sleeved t-shirt", "top", ("long sleeve shirt", "long-sleeved top"), "white", sleeve=1.0, torso="full"),
    _g("shirt", "top", ("button-up shirt", "dress shirt", "button-down shirt"), "white", sleeve=1.0, torso="full"),
    _g("short-sleeved shirt", "top", ("short sleeve shirt", "hawaiian shirt"), "white", sleeve=0.32, torso="full"),
    _g("polo shirt", "top", ("polo",), "navy", sleeve=0.3, torso="full"),
    _g("tank top", "top", ("vest top", "singlet", "sleeveless top", "camisole"), "white", sleeve=0.0, torso="full"),
    _g("crop top", "top", ("cropped top",), "white", sleeve=0.25, torso="upper"),
    _g("blouse", "top", (), "white", fabric="silk", sleeve=0.9, torso="full"),
    _g("sweater", "top", ("jumper", "pullover", "knitted sweater"), "grey", fabric="knit", sleeve=1.0,
       torso="full"),
    _g("turtleneck", "top", ("polo neck", "turtleneck sweater"), "black", fabric="knit", sleeve=1.0,
       torso="full", neck=True),
    _g("hoodie", "top", ("hooded sweatshirt", "sweatshirt"), "grey", sleeve=1.0, torso="full", neck=True),
    _g("jersey", "top", ("sports jersey", "football shirt"), "red", fabric="synthetic", sleeve=0.3, torso="full"),
    _g("jacket", "outer", ("bomber jacket", "leather jacket", "denim jacket", "windbreaker"), "black",
       fabric="leather", sleeve=1.0, torso="full"),
    _g("blazer", "outer", ("sport coat", "suit jacket"), "navy", sleeve=1.0, torso="full"),
    _g("cardigan", "outer", (), "beige", fabric="knit", sleeve=1.0, torso="full"),
    _g("coat", "outer", ("overcoat", "trench coat", "parka", "raincoat"), "camel", sleeve=1.0, torso="full",
       leg=0.5, skirt=True),
    _g("waistcoat", "outer", ("vest", "gilet"), "charcoal", sleeve=0.0, torso="full"),
    _g("suit", "outer", ("business suit", "tuxedo"), "charcoal", sleeve=1.0, torso="full", also="trousers"),
    _g("jeans", "bottom", ("denim jeans", "denim"), "denim blue", fabric="denim", leg=1.0, torso="lower"),
    _g("trousers", "bottom", ("pants", "slacks", "chinos", "cargo pants"), "charcoal", leg=1.0, torso="lower"),
    _g("sweatpants", "bottom", ("joggers", "track pants"), "grey", leg=1.0, torso="lower"),
    _g("leggings", "bottom", ("tights", "yoga pants"), "black", fabric="synthetic", leg=1.0, torso="lower"),
    _g("shorts", "bottom", ("denim shorts", "board shorts"), "khaki", leg=0.28, torso="lower"),
    _g("capri pants", "bottom", ("cropped trousers",), "beige", leg=0.72, torso="lower"),
    _g("skirt", "bottom", (), "black", leg=0.45, skirt=True, torso="lower"),
    _g("mini skirt", "bottom", ("miniskirt",), "black", leg=0.22, skirt=True, torso="lower"),
    _g("long skirt", "bottom", ("maxi skirt",), "black", leg=0.95, skirt=True, torso="lower"),
    _g("dress", "dress", ("sundress", "cocktail dress"), "red", fabric="silk", sleeve=0.0, leg=0.45, skirt=True,
       torso="full"),
    _g("long dress", "dress", ("gown", "evening gown", "maxi dress", "ball gown", "wedding dress"), "navy",
       fabric="silk", sleeve=0.0, leg=0.97, skirt=True, torso="full"),
    _g("mini dress", "dress", ("short dress",), "black", sleeve=0.0, leg=0.22, skirt=True, torso="full"),
    _g("robe", "dress", ("bathrobe", "kimono"), "white", fabric="silk", sleeve=0.85, leg=0.8, skirt=True,
       torso="full"),
    _g("jumpsuit", "dress", ("overalls", "boiler suit", "onesie", "coveralls"), "olive", sleeve=1.0, leg=1.0,
       torso="full"),
    _g("sneakers", "shoes", ("trainers", "running shoes", "tennis shoes"), "white", fabric="synthetic",
       shaft=0.06),
    _g("shoes", "shoes", ("dress shoes", "loafers", "oxfords"), "black", fabric="leather", shaft=0.02),
    _g("boots", "shoes", ("ankle boots", "combat boots", "cowboy boots"), "brown", fabric="leather", shaft=0.35),
    _g("knee-high boots", "shoes", ("riding boots", "tall boots"), "black", fabric="leather", shaft=0.95),
    _g("high heels", "shoes", ("heels", "pumps", "stilettos"), "black", fabric="leather", shaft=0.0),
    _g("sandals", "shoes", ("flip-flops", "slippers"), "brown", fabric="leather", shaft=0.0),
    _g("hat", "hat", ("fedora", "sun hat", "top hat", "cowboy hat"), "black", crown=0.42),
    _g("cap", "hat", ("baseball cap",), "navy", crown=0.36),
    _g("beanie", "hat", ("knit cap", "woolly hat"), "grey", fabric="knit", crown=0.4),
    _g("helmet", "hat", (), "white", fabric="synthetic", crown=0.55),
    _g("gloves", "gloves", ("mittens",), "black", fabric="leather"),
    _g("scarf", "scarf", ("neckerchief", "bandana"), "red", fabric="knit"),
)
GARMENT_BY_NAME = {g.name: g for g in GARMENTS}

# Fabric colours as sRGB albedo in [0, 1] (names as people write them, with spaces).
COLOURS: dict[str, RGB] = {
    "red": (0.72, 0.07, 0.08), "dark red": (0.45, 0.04, 0.05), "maroon": (0.40, 0.05, 0.09),
    "burgundy": (0.44, 0.07, 0.15), "crimson": (0.66, 0.05, 0.15), "scarlet": (0.80, 0.12, 0.07),
    "pink": (0.93, 0.58, 0.68), "hot pink": (0.95, 0.30, 0.60), "light pink": (0.97, 0.76, 0.80),
    "salmon": (0.94, 0.52, 0.45), "coral": (0.96, 0.45, 0.36), "orange": (0.93, 0.43, 0.08),
    "rust": (0.64, 0.25, 0.10), "peach": (0.98, 0.72, 0.56), "yellow": (0.95, 0.80, 0.10),
    "mustard": (0.80, 0.62, 0.12), "gold": (0.83, 0.66, 0.22), "cream": (0.95, 0.91, 0.80),
    "beige": (0.85, 0.78, 0.64), "tan": (0.78, 0.63, 0.45), "khaki": (0.72, 0.66, 0.48),
    "camel": (0.72, 0.55, 0.35), "brown": (0.40, 0.25, 0.14), "dark brown": (0.24, 0.15, 0.09),
    "chocolate": (0.30, 0.17, 0.09), "olive": (0.42, 0.42, 0.16), "green": (0.13, 0.50, 0.18),
    "dark green": (0.06, 0.28, 0.12), "forest green": (0.10, 0.33, 0.15), "lime green": (0.50, 0.85, 0.20),
    "mint": (0.66, 0.90, 0.76), "emerald": (0.05, 0.55, 0.35), "sage": (0.60, 0.68, 0.55),
    "teal": (0.05, 0.45, 0.47), "turquoise": (0.20, 0.75, 0.72), "cyan": (0.10, 0.80, 0.85),
    "sky blue": (0.50, 0.75, 0.92), "light blue": (0.62, 0.78, 0.92), "baby blue": (0.65, 0.80, 0.95),
    "blue": (0.10, 0.25, 0.72), "royal blue": (0.15, 0.30, 0.80), "cobalt": (0.05, 0.28, 0.67),
    "navy": (0.07, 0.10, 0.28), "navy blue": (0.07, 0.10, 0.30), "dark blue": (0.06, 0.10, 0.38),
    "denim blue": (0.21, 0.31, 0.50), "indigo": (0.22, 0.13, 0.48), "purple": (0.42, 0.15, 0.55),
    "violet": (0.55, 0.30, 0.75), "lavender": (0.75, 0.68, 0.88), "lilac": (0.78, 0.64, 0.82),
    "magenta": (0.80, 0.10, 0.55), "plum": (0.45, 0.18, 0.38), "white": (0.92, 0.92, 0.90),
    "off-white": (0.90, 0.88, 0.82), "ivory": (0.95, 0.93, 0.84), "black": (0.05, 0.05, 0.05),
    "charcoal": (0.20, 0.21, 0.22), "dark grey": (0.28, 0.28, 0.29), "grey": (0.50, 0.50, 0.50),
    "gray": (0.50, 0.50, 0.50), "light grey": (0.75, 0.75, 0.74), "silver": (0.75, 0.76, 0.78),
    "bronze": (0.55, 0.38, 0.18), "copper": (0.72, 0.42, 0.24),
}


def _css_colours() -> dict[str, RGB]:
    """Pillow's CSS colour names the list above lacks ("orchid", "tomato"...)."""
    from PIL import ImageColor

    out = {}
    for name, value in ImageColor.colormap.items():
        if name not in COLOURS and name.replace(" ", "") not in {k.replace(" ", "") for k in COLOURS}:
            r, g, b = ImageColor.getrgb(value)[:3]
            out[name] = (r / 255, g / 255, b / 255)
    return out


COLOURS.update(_css_colours())

PATTERNS: dict[str, tuple[str, ...]] = {
    "solid": ("plain", "solid colour"),
    "striped": ("striped", "stripes", "pinstriped", "stripy"),
    "checked": ("checked", "plaid", "tartan", "checkered", "gingham"),
    "dotted": ("polka dot", "polka dots", "dotted", "spotted"),
    "floral": ("floral", "flowery", "flower print"),
    "camouflage": ("camouflage", "camo"),
}

HAIR_WORDS: dict[str, tuple[float, tuple[str, ...]]] = {   # hair length (0 bald .. 1 long), phrases
    "bald": (0.0, ("bald", "bald head", "shaved head", "hairless")),
    "buzz cut": (0.12, ("buzz cut", "crew cut", "very short hair")),
    "short": (0.35, ("short hair", "pixie cut", "short haircut")),
    "medium": (0.6, ("shoulder-length hair", "medium-length hair", "bob cut")),
    "long": (1.0, ("long hair", "ponytail", "braids", "long flowing hair", "dreadlocks")),
    None: (-1.0, ("hair", "hairstyle", "haircut", "curly hair", "afro")),  # hair named, length unsaid
}
HAIR_COLOURS: dict[str, tuple[RGB, tuple[str, ...]]] = {
    "black": ((0.06, 0.05, 0.05), ("black hair", "jet-black hair")),
    "dark brown": ((0.17, 0.11, 0.07), ("dark brown hair", "brunette")),
    "brown": ((0.33, 0.22, 0.13), ("brown hair", "chestnut hair")),
    "blonde": ((0.80, 0.66, 0.40), ("blonde", "blond", "blonde hair", "golden hair", "fair-haired")),
    "platinum": ((0.90, 0.86, 0.76), ("platinum blonde", "platinum hair")),
    "red": ((0.55, 0.20, 0.08), ("red hair", "redhead", "ginger", "ginger hair", "auburn hair")),
    "grey": ((0.60, 0.60, 0.60), ("grey hair", "gray hair", "grey-haired", "silver hair")),
    "white": ((0.88, 0.88, 0.86), ("white hair", "white-haired")),
}
SKIN_TONES: dict[str | None, tuple[RGB | None, tuple[str, ...]]] = {
    "pale": ((0.94, 0.80, 0.72), ("pale skin", "fair skin", "porcelain skin")),
    "light": ((0.89, 0.71, 0.60), ("light skin", "light-skinned")),
    "olive": ((0.76, 0.60, 0.45), ("olive skin",)),
    "tanned": ((0.72, 0.52, 0.38), ("tanned skin", "tan skin", "suntanned")),
    "brown": ((0.55, 0.37, 0.26), ("brown skin", "brown-skinned")),
    "dark": ((0.38, 0.25, 0.18), ("dark skin", "dark-skinned")),
    "very dark": ((0.25, 0.16, 0.11), ("very dark skin", "ebony skin")),
    None: (None, ("skin", "complexion", "skin colour")),     # skin named, tone from a colour word
}
OTHER: tuple[str, ...] = (   # the reject class: words about the person, not their clothes
    "person", "man", "woman", "boy", "girl", "child", "kid", "baby", "teenager", "adult", "old", "elderly",
    "young", "tall", "short", "fat", "thin", "skinny", "slim", "muscular", "athletic", "chubby", "overweight",
    "strong", "big", "small", "happy", "sad", "angry", "smiling", "standing", "walking", "running", "dancing",
    "sitting", "face", "body", "head", "arms", "legs", "beard", "moustache", "glasses", "tattoo", "eyes",
    "doctor", "teacher", "soldier", "police officer", "chef", "student", "athlete", "something", "thing",
    "animal", "dog", "cat", "car", "house", "food", "tree", "weather", "music", "beautiful", "handsome",
    "cute", "looking", "clothes", "outfit", "wearing", "dressed", "very", "light", "dark", "bright", "pale",
)

FUNCTION_WORDS = frozenset("a an the of and with in on wearing wears wear dressed his her their its some pair "
                           "pairs who is are has have having plus over under to at for by while also".split())
SEPARATOR_WORDS = frozenset("and with wearing wears in plus over under who has having dressed while".split())
_TOKEN = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*|[,;.!?/&+()]")
_PUNCT = frozenset(",;.!?/&+()")


# -- vocabulary embeddings, once per encoder --------------------------------------

@dataclass
class _Vocab:
    categories: list[str]       # category of each entry
    labels: list[Any]           # what each entry means within its category
    texts: list[str]
    emb: np.ndarray             # (E, D) unit rows
    neutral: np.ndarray         # (E,) the neutral phrase's similarity to each entry


def _vocab_entries() -> list[tuple[str, Any, str]]:
    entries: list[tuple[str, Any, str]] = []
    entries += [("garment", g.name, a) for g in GARMENTS for a in g.aliases]
    entries += [("colour", name, name) for name in COLOURS]
    entries += [("pattern", name, p) for name, ps in PATTERNS.items() for p in ps]
    entries += [("hair", name, p) for name, (_, ps) in HAIR_WORDS.items() for p in ps]
    entries += [("hair_colour", name, p) for name, (_, ps) in HAIR_COLOURS.items() for p in ps]
    entries += [("skin", name, p) for name, (_, ps) in SKIN_TONES.items() for p in ps]
    entries += [("style", name, p) for name, ps in STYLE_DESCRIPTIONS.items() for p in ps]
    entries += [("other", w, w) for w in OTHER]
    return entries


@lru_cache(maxsize=1)
def reader_identity() -> str:
    """This parser's identity (its code and vocabularies, as this process loaded them): what an
    Appearance's `version` names."""
    return digest_of(source_digest([__name__.removeprefix("avatarforge.")]))


def vocabulary_texts() -> list[str]:
    """Every phrase the parser ranks a prompt's words against: garments, colours, patterns, hair,
    skin tones, styles and the reject class of words about the person."""
    return [text for _, _, text in _vocab_entries()]


_vocab_lock = threading.Lock()
_vocab_cache: "weakref.WeakKeyDictionary[TextEncoder, _Vocab]" = weakref.WeakKeyDictionary()


def vocabulary(encoder: TextEncoder) -> _Vocab:
    """Every vocabulary entry embedded by `encoder` (computed once per encoder)."""
    with _vocab_lock:
        vocab = _vocab_cache.get(encoder)
    if vocab is None:
        entries = _vocab_entries()
        emb = encoder.encode([t for _, _, t in entries])
        neutral = (encoder.encode(NEUTRAL_PROMPT) @ emb.T)[0]
        vocab = _Vocab([c for c, _, _ in entries], [lab for _, lab, _ in entries], [t for _, _, t in entries],
                       emb, neutral)
        with _vocab_lock:
            _vocab_cache[encoder] = vocab
    return vocab


# -- chunking and n-grams ---------------------------------------------------------

@dataclass
class _Match:
    category: str
    label: Any
    score: float
    start: int          # token span in its chunk
    stop: int
    text: str


def chunk_prompt(prompt: str) -> list[list[str]]:
    """The prompt's phrases as lists of lower-case words (a light chunker: it only
    decides where phrases end; what they mean comes from the encoder)."""
    chunks: list[list[str]] = [[]]
    for token in _TOKEN.findall(prompt.lower().replace("’", "'")):
        if token in _PUNCT or token in SEPARATOR_WORDS:
            if chunks[-1]:
                chunks.append([])
            continue
        chunks[-1].append(token)
    return [c for c in chunks if c]


def _ngrams(words: list[str]) -> list[tuple[int, int, str]]:
    """Spans of 1..MAX_NGRAM words that neither start nor end with a function word."""
    out = []
    for n in range(1, MAX_NGRAM + 1):
        for i in range(len(words) - n + 1):
            span = words[i:i + n]
            if span[0] in FUNCTION_WORDS or span[-1] in FUNCTION_WORDS:
                continue
            out.append((i, i + n, " ".join(span)))
    return out


def _classify(texts: list[str], emb: np.ndarray, vocab: _Vocab) -> list[_Match | None]:
    """Each n-gram's nearest vocabulary entry, when it clears its category's bars
    and the nearest entry overall is not in the reject class."""
    sim = emb @ vocab.emb.T                                  # (N, E)
    best = sim.argmax(axis=1)
    out: list[_Match | None] = []
    for i, e in enumerate(best):
        category = vocab.categories[e]
        threshold, margin = THRESHOLDS[category]
        s = float(sim[i, e])
        if category == "other" or s < threshold or s - float(vocab.neutral[e]) < margin:
            out.append(None)
        else:
            out.append(_Match(category, vocab.labels[e], s, 0, 0, texts[i]))
    return out


def _select(matches: list[_Match]) -> list[_Match]:
    """Non-overlapping matches, best first (longer spans win ties), in word order."""
    chosen: list[_Match] = []
    taken: set[int] = set()
    for m in sorted(matches, key=lambda m: -(m.score + 0.01 * (m.stop - m.start))):
        span = set(range(m.start, m.stop))
        if not span & taken:
            chosen.append(m)
            taken |= span
    return sorted(chosen, key=lambda m: m.start)


# -- parsing ------------------------------------------------------------------------

def parse_appearance(prompt: str, encoder: TextEncoder) -> Appearance:
    """Garments, colours, patterns, hair, skin tone and style named by `prompt`
    (already cleaned by text.prompt.clean_prompt)."""
    vocab = vocabulary(encoder)
    chunks = chunk_prompt(prompt)
    spans = [[(ci, a, b, t) for a, b, t in _ngrams(words)] for ci, words in enumerate(chunks)]
    flat = [s for chunk in spans for s in chunk]
    texts = list(dict.fromkeys(t for *_, t in flat))
    emb = encoder.encode(texts) if texts else np.zeros((0, vocab.emb.shape[1]), np.float32)
    classified = dict(zip(texts, _classify(texts, emb, vocab))) if texts else {}

    per_chunk: list[list[_Match]] = []
    for chunk in spans:
        found = []
        for _, a, b, t in chunk:
            m = classified[t]
            if m is not None:
                found.append(_Match(m.category, m.label, m.score, a, b, t))
        per_chunk.append(_select(found))
    for words, chosen in zip(chunks, per_chunk):
        length = _hair_length_behind_colour(words, chosen, encoder, vocab)
        if length is not None:
            chosen.append(length)
        _refine_garments(words, chosen, encoder, vocab)

    appearance = Appearance(phrases=[" ".join(c) for c in chunks], version=reader_identity())
    style = choose_style(texts, emb, encoder)
    _apply_style(appearance, style, per_chunk)
    _apply_chunks(appearance, per_chunk, [" ".join(c) for c in chunks])
    return appearance


def _refine_garments(words: list[str], chosen: list[_Match], encoder: TextEncoder, vocab: _Vocab) -> None:
    """Garment variants whose modifier is cut off by a colour ("a long blue dress",
    "a short-sleeved red shirt"): the garment's words with the phrase's unclaimed
    words before them, re-ranked against garments of the same slot."""
    # A one-word "garment" right before another garment, with only colours or patterns
    # between, is the other's modifier ("mini black skirt", "short-sleeved red shirt").
    k = 0
    while k < len(chosen):
        m = chosen[k]
        nxt = next((j for j in range(k + 1, len(chosen)) if chosen[j].category not in ("colour", "pattern")), None)
        if m.category == "garment" and m.stop - m.start == 1 and nxt is not None and \
                chosen[nxt].category == "garment":
            n = chosen[nxt]
            text = " ".join(words[m.start:m.stop] + words[n.start:n.stop])
            merged = _best_garment(text, None, encoder, vocab)
            if merged is not None:
                chosen[nxt] = _Match("garment", merged[0], merged[1], n.start, n.stop, text)
                del chosen[k]
                continue
        k += 1
    claimed = {i for m in chosen for i in range(m.start, m.stop)}
    for k, m in enumerate(chosen):
        if m.category != "garment":
            continue
        extra = [w for i, w in enumerate(words[:m.start]) if i not in claimed and w not in FUNCTION_WORDS]
        if not extra:
            continue
        text = " ".join(extra + words[m.start:m.stop])
        better = _best_garment(text, GARMENT_BY_NAME[m.label].slot, encoder, vocab)
        if better is not None and better[0] != m.label:
            chosen[k] = _Match("garment", better[0], better[1], m.start, m.stop, text)


def _best_garment(text: str, slot: str | None, encoder: TextEncoder, vocab: _Vocab) -> tuple[str, float] | None:
    """The garment (of `slot`, or any) nearest `text`, when it clears a stricter bar
    than single n-grams do (a re-ranked phrase must be a clear match)."""
    entries = [i for i, (c, lab) in enumerate(zip(vocab.categories, vocab.labels))
               if c == "garment" and (slot is None or GARMENT_BY_NAME[lab].slot == slot)]
    sim = (encoder.encode(text) @ vocab.emb[entries].T)[0]
    best = int(np.argmax(sim))
    threshold, margin = THRESHOLDS["garment"]
    if sim[best] >= threshold + 0.15 and sim[best] - vocab.neutral[entries[best]] >= margin:
        return vocab.labels[entries[best]], float(sim[best])
    return None


def _hair_length_behind_colour(words: list[str], chosen: list[_Match], encoder: TextEncoder,
                               vocab: _Vocab) -> _Match | None:
    """The hair length of a phrase whose hair words were taken by a colour ("short
    grey hair" matches "grey hair" best): the phrase without the colour words, with
    "hair" put back, ranked against the hair-length entries only."""
    colour = [m for m in chosen if m.category == "hair_colour"]
    if not colour or any(m.category == "hair" and HAIR_WORDS[m.label][0] >= 0 for m in chosen):
        return None
    rest = [w for i, w in enumerate(words) if not any(m.start <= i < m.stop for m in colour)
            and w not in FUNCTION_WORDS]
    if not rest:
        return None
    text = " ".join(rest + ["hair"])
    entries = [i for i, (c, lab) in enumerate(zip(vocab.categories, vocab.labels))
               if c == "hair" and HAIR_WORDS[lab][0] >= 0]
    sim = (encoder.encode(text) @ vocab.emb[entries].T)[0]
    best = int(np.argmax(sim))
    threshold, margin = THRESHOLDS["hair"]
    if sim[best] < threshold + 0.15 or sim[best] - vocab.neutral[entries[best]] < margin:
        return None      # "blonde hair" alone: "hair" matches every length a little; stricter bar
    return _Match("hair", vocab.labels[entries[best]], float(sim[best]), 0, 0, text)


def _apply_style(appearance: Appearance, style: StyleChoice, per_chunk: list[list[_Match]]) -> None:
    # A phrase that is nearer a garment or colour than a style ("suit") is not a style word. The
    # words kept for the style may be a longer phrase than the one that scored best ("metallic
    # robot" around "robot", equal scores), so the style's name is what must agree.
    style_names = {m.label for ms in per_chunk for m in ms if m.category == "style"}
    if style.explicit and style.name in style_names:
        appearance.style = style.name
        appearance.scores["style"] = style.score


def _apply_chunks(appearance: Appearance, per_chunk: list[list[_Match]], phrases: list[str]) -> None:
    pending: list[_Match] = []          # colours/patterns waiting for the next garment
    garments: dict[str, Garment] = {}
    last: Garment | None = None
    for matches, phrase in zip(per_chunk, phrases):
        cats = {m.category for m in matches}
        if "hair" in cats or "hair_colour" in cats:
            _apply_hair(appearance, matches, phrase)
            continue
        if "skin" in cats and "garment" not in cats:
            _apply_skin(appearance, matches)
            continue
        if "garment" not in cats:
            pending += [m for m in matches if m.category in ("colour", "pattern")]
            continue
        group: list[_Match] = pending
        pending = []
        for m in matches:
            if m.category != "garment":
                group.append(m)
                continue
            for g in _make_garments(m, group, phrase):
                if g.slot not in garments or g.score > garments[g.slot].score:
                    garments[g.slot] = g
                last = garments.get(g.slot)
            group = []
        if group and last is not None:      # "a shirt in red": trailing words colour the garment before
            _colour_garment(last, group)
    if pending and last is not None and last.colour_score is None:
        _colour_garment(last, pending)
    if "dress" in garments and "bottom" in garments and garments["bottom"].kind != "leggings":
        # A dress and a skirt/trousers: the better-matched phrase wins the legs.
        loser = "bottom" if garments["dress"].score >= garments["bottom"].score else "dress"
        del garments[loser]
    appearance.garments = [garments[s] for s in SLOTS if s in garments]
    for g in appearance.garments:
        appearance.scores[f"garment.{g.slot}"] = g.score
        if g.colour_score is not None:
            appearance.scores[f"colour.{g.slot}"] = g.colour_score
        if g.pattern_score is not None:
            appearance.scores[f"pattern.{g.slot}"] = g.pattern_score


def _make_garments(match: _Match, modifiers: list[_Match], phrase: str) -> list[Garment]:
    kind = GARMENT_BY_NAME[match.label]
    out = [_garment_of(kind, match, phrase)]
    if kind.also:
        out.append(_garment_of(GARMENT_BY_NAME[kind.also], match, phrase))
    for g in out:
        _colour_garment(g, modifiers)
    return out


def _garment_of(kind: GarmentKind, match: _Match, phrase: str) -> Garment:
    return Garment(slot=kind.slot, kind=kind.name, colour=COLOURS[kind.colour], colour_name=kind.colour,
                   coverage=kind.coverage, phrase=phrase, score=match.score)


def _colour_garment(garment: Garment, modifiers: list[_Match]) -> None:
    colours = [m for m in modifiers if m.category == "colour"]
    patterns = [m for m in modifiers if m.category == "pattern"]
    if colours:
        garment.colour, garment.colour_name = COLOURS[colours[0].label], colours[0].label
        garment.colour_score = colours[0].score
    if patterns and patterns[0].label != "solid":
        garment.pattern, garment.pattern_score = patterns[0].label, patterns[0].score
        if patterns[0].label == "camouflage" and not colours:    # camouflage means its own colours
            garment.colour, garment.colour_name = COLOURS["olive"], "olive"
            garment.pattern_colour_name = "dark brown"
        elif len(colours) > 1:
            garment.pattern_colour_name = colours[1].label
        else:   # a pattern with one colour named: the contrasting neutral
            garment.pattern_colour_name = "white" if _luminance(garment.colour) < 0.5 else "black"
        garment.pattern_colour = COLOURS[garment.pattern_colour_name]


def _apply_hair(appearance: Appearance, matches: list[_Match], phrase: str) -> None:
    hair = appearance.hair
    hair.phrase = phrase
    for m in matches:
        if m.category == "hair":
            hair.score = max(hair.score, m.score)
            length = HAIR_WORDS[m.label][0]
            if length >= 0:
                hair.length, hair.length_name = length, m.label
        elif m.category == "hair_colour":
            hair.score = max(hair.score, m.score)
            hair.colour, hair.colour_name = HAIR_COLOURS[m.label][0], m.label
    colours = [m for m in matches if m.category == "colour"]
    if hair.colour is None and colours:     # dyed: any fabric colour word
        hair.colour, hair.colour_name = COLOURS[colours[0].label], colours[0].label
    appearance.scores["hair"] = hair.score


def _apply_skin(appearance: Appearance, matches: list[_Match]) -> None:
    for m in matches:
        if m.category == "skin" and SKIN_TONES[m.label][0] is not None:
            appearance.skin_tone, appearance.skin_tone_name = SKIN_TONES[m.label][0], m.label
            appearance.scores["skin"] = m.score
            return
    colours = [m for m in matches if m.category == "colour"]
    if colours:   # "green skin"
        appearance.skin_tone, appearance.skin_tone_name = COLOURS[colours[0].label], colours[0].label
        appearance.scores["skin"] = colours[0].score


def _luminance(rgb: RGB) -> float:
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
