"""Words for body shapes, used to write the codebook's descriptions (text/shape/codebook.py).

These tables say how people describe each phenotype LEVEL (a value on Anny's
scale); the codebook writes sentences from an entry's parameters by drawing
from them. Prompts are never matched against these words directly: prompts and
descriptions are both embedded by a TextEncoder, so words not listed here
("lanky", "stocky", "in her eighties") land near the levels they mean.

Ages are on Anny's scale (MakeHuman's 1, 11, 25 and 90 years at 0, 1/3, 2/3, 1).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Level:
    """One level of an attribute: its value and ways to say it.

    adjectives: words that go before the noun ("a tall man"); phrases: words that
    go after it ("a man of average height"). The default level of an attribute has no
    adjectives (that is how text/shape/attributes.py finds it), only phrases."""
    name: str
    value: float
    adjectives: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()


HEIGHT = (
    Level("very short", 0.05, ("very short", "tiny", "extremely short", "diminutive", "very small", "minuscule"),
          ("who is very short", "barely five feet tall", "of very small stature")),
    # Not "little": "a little girl" is a child of ordinary height (the age nouns say "little").
    Level("short", 0.25, ("short", "petite", "small", "shortish", "compact", "low-statured"),
          ("of short stature", "who is rather short", "below average height")),
    Level("average height", 0.5, (), ("of average height", "of medium height", "of normal height")),
    Level("tall", 0.75, ("tall", "tallish", "long-limbed", "statuesque", "rangy"),
          ("who is tall", "above average height", "over six feet tall")),
    Level("very tall", 0.95, ("very tall", "towering", "extremely tall", "giant", "exceptionally tall"),
          ("who towers over everyone", "nearly seven feet tall", "of great height")),
)

WEIGHT = (
    Level("emaciated", 0.05, ("emaciated", "skeletal", "extremely thin", "gaunt", "rail-thin", "bony", "starved-looking"),
          ("who is skin and bones", "who is dangerously underweight")),
    Level("thin", 0.25, ("thin", "slim", "skinny", "slender", "lean", "svelte", "slight", "willowy", "narrow"),
          ("with a slim build", "who is underweight", "with a slender figure")),
    Level("average weight", 0.5, (), ("of average weight", "of medium build", "of normal weight", "of average build")),
    Level("heavy", 0.75, ("chubby", "plump", "overweight", "heavy", "chunky", "portly", "heavyset", "pudgy", "round",
                          "thickset", "stout"),
          ("with a heavy build", "who is a bit overweight", "carrying extra weight")),
    Level("obese", 0.95, ("obese", "very fat", "fat", "morbidly obese", "rotund", "corpulent", "enormous",
                          "very overweight", "massively overweight"),
          ("who is very fat", "with a huge body", "who is severely obese")),
)

MUSCLE = (
    Level("weak", 0.1, ("frail", "weak", "feeble", "flabby", "soft-bodied", "out-of-shape", "puny", "unathletic",
                        "delicate", "fragile"),
          ("with no muscle", "with weak, thin arms", "who never exercises")),
    Level("average muscle", 0.5, (), ("of average fitness", "with average muscle tone")),
    Level("muscular", 0.75, ("muscular", "athletic", "fit", "toned", "strong", "sporty", "well-built", "sinewy"),
          ("in good shape", "with an athletic build", "who works out")),
    Level("very muscular", 0.95, ("very muscular", "buff", "ripped", "brawny", "beefy", "hulking", "jacked",
                                  "powerfully built", "herculean"),
          ("built like a bodybuilder", "with huge muscles", "who lifts heavy weights every day")),
)

PROPORTIONS = (
    Level("odd proportions", 0.15, ("oddly proportioned", "disproportionate", "awkwardly built", "ungainly"),
          ("with unusual body proportions", "with an odd-looking figure")),
    Level("average proportions", 0.5, (), ("with ordinary proportions",)),
    Level("ideal proportions", 0.9, ("well-proportioned", "perfectly proportioned", "model-like", "shapely"),
          ("with ideal body proportions", "with a classic, balanced figure", "built like a fashion model")),
)

# Gender: 0 male, 1 female (Anny). The neutral level's nouns say nothing about it.
GENDER_LEVELS = (("male", 0.0), ("unspecified", 0.5), ("female", 1.0))
GENDER_PRONOUNS = {"male": ("he", "his"), "female": ("she", "her"), "unspecified": ("they", "their")}

# Age levels on Anny's scale, with the range of years each stands for.
AGE_LEVELS = (("baby", 0.0, (0, 1)), ("toddler", 0.15, (2, 4)), ("child", 0.33, (6, 11)),
              ("teen", 0.5, (13, 18)), ("young adult", 2.0 / 3.0, (20, 34)), ("middle-aged", 0.8, (40, 59)),
              ("old", 0.93, (62, 79)), ("very old", 1.0, (85, 100)))
DEFAULT_AGE = "young adult"

# Nouns by (age level, gender level). The young-adult nouns are what a prompt says
# when it says no age at all.
NOUNS: dict[tuple[str, str], tuple[str, ...]] = {
    ("baby", "male"): ("baby boy", "infant boy", "newborn boy"),
    ("baby", "female"): ("baby girl", "infant girl", "newborn girl"),
    ("baby", "unspecified"): ("baby", "infant", "newborn"),
    ("toddler", "male"): ("toddler boy", "little toddler boy"),
    ("toddler", "female"): ("toddler girl", "little toddler girl"),
    ("toddler", "unspecified"): ("toddler", "small toddler", "preschooler"),
    ("child", "male"): ("boy", "little boy", "young boy", "schoolboy"),
    ("child", "female"): ("girl", "little girl", "young girl", "schoolgirl"),
    ("child", "unspecified"): ("child", "kid", "young child", "schoolchild"),
    ("teen", "male"): ("teenage boy", "teen boy", "adolescent boy", "high-school boy"),
    ("teen", "female"): ("teenage girl", "teen girl", "adolescent girl", "high-school girl"),
    ("teen", "unspecified"): ("teenager", "adolescent", "teen", "youth"),
    # Family words and gendered roles say a gender (and an adult) without saying an age level.
    ("young adult", "male"): ("man", "guy", "young man", "gentleman", "male", "fellow", "dude", "father", "dad",
                              "husband", "boyfriend", "groom", "king", "prince", "monk", "actor", "policeman",
                              "sportsman", "waiter"),
    ("young adult", "female"): ("woman", "lady", "young woman", "female", "gal", "mother", "mom", "wife",
                                "girlfriend", "bride", "queen", "princess", "nun", "actress", "policewoman",
                                "sportswoman", "waitress"),
    ("young adult", "unspecified"): ("person", "adult", "someone", "individual", "human", "figure", "young adult"),
    ("middle-aged", "male"): ("middle-aged man", "middle-aged gentleman", "mature man", "man in midlife"),
    ("middle-aged", "female"): ("middle-aged woman", "middle-aged lady", "mature woman", "woman in midlife"),
    ("middle-aged", "unspecified"): ("middle-aged person", "middle-aged adult", "mature adult"),
    ("old", "male"): ("old man", "elderly man", "grandfather", "grandpa", "senior man", "old gentleman",
                      "aged man", "pensioner"),
    ("old", "female"): ("old woman", "elderly woman", "grandmother", "grandma", "senior woman", "old lady",
                        "aged woman"),
    ("old", "unspecified"): ("old person", "elderly person", "senior citizen", "senior", "retiree",
                             "aged person"),
    ("very old", "male"): ("very old man", "ancient old man", "extremely old man", "frail great-grandfather"),
    ("very old", "female"): ("very old woman", "ancient old woman", "extremely old woman",
                             "frail great-grandmother"),
    ("very old", "unspecified"): ("very old person", "extremely elderly person", "centenarian"),
}

DECADE_WORDS = {10: "teens", 20: "twenties", 30: "thirties", 40: "forties", 50: "fifties", 60: "sixties",
                70: "seventies", 80: "eighties", 90: "nineties"}

@dataclass(frozen=True)
class LocalChange:
    """A named local change of Anny (MakeHuman modifiers, each in [-1, 1]) and ways to say it."""
    name: str
    modifiers: dict[str, float] = field(default_factory=dict)
    adjectives: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    female_only: bool = False
    adults_only: bool = True


LOCAL_CHANGES = (
    LocalChange("pregnant", {"stomach-pregnant-incr": 1.0},
                ("pregnant", "heavily pregnant", "expectant"),
                ("who is pregnant", "with a pregnant belly", "expecting a baby", "with a baby bump",
                 "who is eight months pregnant"), female_only=True),
    LocalChange("pot belly", {"stomach-pregnant-incr": 0.45},
                ("pot-bellied", "paunchy", "big-bellied"),
                ("with a beer belly", "with a pot belly", "with a big round belly", "with a paunch",
                 "with a large gut")),
    LocalChange("long legs", {"upperlegs-height-incr": 0.6, "lowerlegs-height-incr": 0.6},
                ("long-legged", "leggy"),
                ("with long legs", "with very long legs", "whose legs are long")),
    LocalChange("broad shoulders", {"measure-shoulder-dist-incr": 0.8, "torso-vshape-incr": 0.5},
                ("broad-shouldered", "wide-shouldered", "barrel-chested"),
                ("with broad shoulders", "with wide shoulders", "with a V-shaped torso")),
    LocalChange("wide hips", {"hip-scale-horiz-incr": 0.6, "measure-hips-circ-incr": 0.6},
                ("wide-hipped", "curvy", "pear-shaped", "broad-hipped"),
                ("with wide hips", "with broad hips", "with a pear-shaped figure", "with curvy hips")),
)


# What prompts say besides the body (clothes, hair, props). A share of the codebook's
# sentences carry a random one, independent of the body, so that these words weigh
# the same on every level of every attribute and a prompt about clothes alone stays
# at the default body.
COLOURS = ("red", "blue", "black", "white", "green", "grey", "yellow", "brown", "pink", "purple", "orange", "navy")
GARMENTS = ("hoodie", "t-shirt", "suit", "dress", "jacket", "sweater", "coat", "shirt", "skirt", "tracksuit",
            "uniform", "overalls", "cardigan", "raincoat", "jeans", "shorts", "trousers", "hat", "scarf", "vest")
EXTRAS = ("with short brown hair", "with long blonde hair", "with curly black hair", "wearing glasses",
          "with a beard", "with a ponytail", "wearing sneakers", "wearing boots", "with a backpack",
          "holding a cup of coffee", "standing", "smiling", "with tattoos", "with grey hair", "bald")


# Things a prompt may be about instead of a body (the codebook's background entries:
# the neutral body described with these). A chunk of a prompt that is closer to
# them than to any body level is evidence of nothing. Generic on purpose: they
# teach the ranking what "not about the body" looks like, not a list to match.
THINGS = ("car", "house", "table", "dog", "cat", "tree", "city street", "beach", "mountain", "cup of coffee",
          "book", "computer", "ball", "guitar", "lamp", "window", "door", "road", "river", "forest", "sunset",
          "rainy day", "snowy field", "building", "kitchen", "office", "park", "sofa", "bird", "horse", "boat",
          "train", "plane", "bridge", "painting", "bottle of wine", "plate of food", "fruit", "sandwich", "pizza",
          "cake", "desk", "laptop", "camera", "clock", "box", "bag", "shoe", "landscape", "castle", "robot",
          "spaceship", "planet", "river bank", "lake", "field of grass", "night sky", "storm", "fire", "stone")
SCENES = ("at the beach", "in a park", "in the city", "at night", "in the rain", "on a sunny day", "in an office",
          "in a kitchen", "on stage", "in the snow", "in a forest", "at a party", "on a street", "indoors",
          "outdoors", "in a studio", "at home", "on a bench", "by the window", "in a garage")
ACTIONS = ("walking", "running", "sitting", "waving", "reading a book", "dancing", "talking on the phone",
           "laughing", "playing football", "cooking", "driving a car", "riding a horse", "singing", "jumping",
           "sleeping", "eating lunch", "looking up", "posing for a photo", "carrying a bag", "playing guitar")
ROLES = ("teacher", "doctor", "nurse", "student", "chef", "pilot", "soldier", "police officer", "artist",
         "musician", "tourist", "scientist", "farmer", "firefighter", "programmer", "priest",
         "detective", "knight", "wizard", "pirate", "cowboy", "astronaut", "clown")

# Local changes marked adults_only need at least this age (Anny's scale: the teen level).
ADULT_AGE = 0.5
