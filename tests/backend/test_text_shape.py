"""Text -> body shape (AvatarCLIP S1) with the embedded MiniLM encoder, and the SMPL tier
on a synthetic SMPL file. The codebook embeddings are cached on disk once per machine."""
from __future__ import annotations

import json

import numpy as np
import pytest

from avatarforge.backend.cli import main
from avatarforge.backend.config import BackendConfig
from avatarforge.backend.models.anny_model import default_phenotypes, phenotype_names
from avatarforge.backend.text import shape
from avatarforge.protocol import ErrorCode, ProtocolError
from tests.support.synthetic_smpl import write_synthetic_model

DEFAULT = default_phenotypes()


@pytest.fixture(scope="module")
def encoder():
    from avatarforge.backend.models.encoders import load_text_encoder

    return load_text_encoder("minilm")


def moved(est, name):
    return est.phenotypes[name] - DEFAULT[name]


def test_clear_prompts_move_the_right_phenotypes_only(encoder):
    tall = shape.estimate_shape("a tall man", encoder)
    assert tall.phenotypes["height"] > 0.6 and tall.phenotypes["gender"] < 0.3
    assert abs(moved(tall, "age")) < 0.05 and abs(moved(tall, "weight")) < 0.05 and abs(moved(tall, "muscle")) < 0.05
    old = shape.estimate_shape("an elderly woman", encoder)
    assert old.phenotypes["age"] > 0.85 and old.phenotypes["gender"] > 0.7 and abs(moved(old, "height")) < 0.05
    child = shape.estimate_shape("a little boy", encoder)
    assert 0.1 < child.phenotypes["age"] < 0.45 and child.phenotypes["gender"] < 0.3
    fat = shape.estimate_shape("an obese woman", encoder)
    assert fat.phenotypes["weight"] > 0.6
    strong = shape.estimate_shape("a muscular bodybuilder", encoder)
    assert strong.phenotypes["muscle"] > 0.6
    pregnant = shape.estimate_shape("a pregnant woman", encoder)
    assert pregnant.local_changes.get("stomach-pregnant-incr", 0) > 0.5
    for est in (tall, old, child, fat, strong, pregnant):
        assert list(est.phenotypes) == list(phenotype_names()) and 0 <= est.confidence <= 1


def test_weight_words_do_not_age_the_body(encoder):
    assert abs(moved(shape.estimate_shape("an obese woman", encoder), "age")) < 0.05


def test_tall_moves_height_and_nothing_else(encoder):
    tall = shape.estimate_shape("a tall man", encoder)
    for name in ("age", "weight", "muscle", "proportions"):
        assert abs(moved(tall, name)) < 0.05, (name, tall.phenotypes)
    assert tall.local_changes == {} and tall.details["attributes"]["height"]["chunk"] is not None


def test_pregnant_woman_is_an_adult_female_with_the_belly(encoder):
    est = shape.estimate_shape("a pregnant woman", encoder)
    assert est.phenotypes["gender"] > 0.7 and 0.6 <= est.phenotypes["age"] <= 0.72, est.phenotypes
    assert est.local_changes.get("stomach-pregnant-incr", 0) > 0.5
    boy = shape.estimate_shape("a pregnant little boy", encoder)     # no pregnancy for a male child
    assert "stomach-pregnant-incr" not in boy.local_changes


def test_prompt_about_no_body_keeps_the_neutral_body(encoder):
    est = shape.estimate_shape("a red car parked outside", encoder)
    assert est.phenotypes == {k: float(v) for k, v in DEFAULT.items()} and est.local_changes == {}
    assert est.confidence < 0.3


def test_prompt_chunks_stay_inside_clauses():
    texts = [c.text for c in shape.prompt_chunks("a tall, skinny old man in a red hoodie")]
    assert "tall" in texts and "old man" in texts and "skinny old man" in texts
    assert "tall skinny" not in texts and not any(t.endswith(" in") or t.startswith("a ") for t in texts)
    assert shape.carrier("lanky") == "a lanky person" and shape.carrier("in her eighties") == "a person in her eighties"


def test_words_never_listed_work_through_the_embeddings(encoder):
    listed = {w for s in shape.build_codebook().sentences for w in s.lower().split()}
    assert not {"wrinkly", "granny"} & listed
    old = shape.estimate_shape("a wrinkly granny", encoder)
    assert old.phenotypes["age"] > 0.85 and old.phenotypes["gender"] > 0.7
    assert old.details["attributes"]["age"]["chunk"] in ("wrinkly", "granny", "wrinkly granny")   # the words' own chunks


def test_nothing_about_the_body_keeps_the_neutral_body_with_low_confidence(encoder):
    for prompt in ("a person in a green raincoat", "a person"):
        est = shape.estimate_shape(prompt, encoder)
        for name in ("height", "weight", "muscle"):
            assert abs(moved(est, name)) < 0.1, (prompt, name, est.phenotypes)
        assert est.confidence < 0.5, (prompt, est.confidence)
    assert shape.estimate_shape("a very tall, muscular man", encoder).confidence > 0.5


def test_bad_prompts_and_non_ascii(encoder):
    for bad in ("", "   ", "x" * 501, 42):
        with pytest.raises(ProtocolError) as err:
            shape.estimate_shape(bad, encoder)
        assert err.value.code == ErrorCode.BAD_REQUEST and err.value.field == "prompt"
    est = shape.estimate_shape("un homme très grand 👨 — 高い", encoder)
    assert list(est.phenotypes) == list(phenotype_names()) and 0 <= est.confidence <= 1


def test_smpl_tier_ranks_measured_descriptions(encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("AVATARFORGE_TEXT_CACHE", str(tmp_path / "cache"))
    write_synthetic_model(tmp_path, "smpl", "neutral")
    config = BackendConfig(models_dir=tmp_path)
    tall = shape.estimate_shape("a very tall person", encoder, config, model="smpl")
    short = shape.estimate_shape("a very short person", encoder, config, model="smpl")
    assert len(tall.betas) == 10 and tall.to_json()["betas"] == tall.betas
    from avatarforge.backend.models.smpl_model import load_smpl_model

    body = load_smpl_model("smpl", config)
    h = [shape.body_measurements(body.build({"betas": est.betas}).vertices)["height"] for est in (tall, short)]
    assert h[0] > h[1] + 0.05                 # measured, whatever the betas mean
    with pytest.raises(ProtocolError) as err:
        shape.estimate_shape("a tall man", encoder, BackendConfig(models_dir=tmp_path / "none"), model="smpl")
    assert err.value.code == ErrorCode.MODEL_MISSING


def test_cli_prints_the_estimate_as_json(capsys):
    assert main(["text2shape", "a tall, skinny old man in a red hoodie and blue jeans", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"model", "phenotypes", "local_changes", "confidence"} and out["model"] == "anny"
    assert out["phenotypes"]["age"] > 0.85 and out["phenotypes"]["gender"] < 0.3 and out["phenotypes"]["weight"] < 0.4
    assert main(["text2shape", "   "]) == 2


def test_ages_in_numbers_are_read_on_annys_scale():
    assert [round(shape.years_to_anny_age(y), 4) for y in (0, 1, 11, 25, 90, 110)] == [0, 0, 0.3333, 0.6667, 1, 1]
    read = {p: shape.numeric_age(p) for p in ("a 70-year-old man", "a man aged 8", "a woman in her 40s",
                                             "a man of 45", "a seventy-five year old woman", "a 6-month-old baby",
                                             "a man, 62, in a coat")}
    assert {p: a.years for p, a in read.items()} == {
        "a 70-year-old man": 70, "a man aged 8": 8, "a woman in her 40s": 45, "a man of 45": 45,
        "a seventy-five year old woman": 75, "a 6-month-old baby": 0.5, "a man, 62, in a coat": 62}
    for not_an_age in ("a group of 3 people", "a 6-foot man", "a man weighing 80 kg", "a man of 190 cm", "a tall man"):
        assert shape.numeric_age(not_an_age) is None, not_an_age


def test_numeric_ages_set_the_age_and_words_still_set_the_rest(encoder):
    old = shape.estimate_shape("a 70-year-old man", encoder)
    assert 0.85 <= old.phenotypes["age"] <= 0.95 and old.phenotypes["gender"] < 0.3
    assert old.details["attributes"]["age"]["chunk"] == "70-year-old"
    child = shape.estimate_shape("a chubby girl aged 8", encoder)
    assert 0.15 < child.phenotypes["age"] < 0.3 and child.phenotypes["gender"] > 0.7 and child.phenotypes["weight"] > 0.6


def test_words_about_a_thing_do_not_shape_the_body(encoder):
    for prompt in ("an old castle on a hill", "a fat cat sleeping", "a strong cup of tea"):
        est = shape.estimate_shape(prompt, encoder)
        assert est.phenotypes == {k: float(v) for k, v in DEFAULT.items()}, (prompt, est.phenotypes)
        assert est.confidence < 0.3
    # ... but a phrase about clothes after the person does not unsay the person
    assert shape.estimate_shape("a young adult man with a beard", encoder).phenotypes["gender"] < 0.3


def test_a_longer_chunk_unsure_of_its_level_does_not_unsay_the_words_inside(encoder):
    est = shape.estimate_shape("a tiny old woman", encoder)
    assert est.phenotypes["age"] > 0.85 and est.phenotypes["height"] < 0.4 and est.phenotypes["gender"] > 0.7
    assert shape.estimate_shape("a chubby baby", encoder).phenotypes["age"] < 0.12


# -- rare words through WordNet glosses (backend/text/lexicon.py) --------------------------

def test_lanky_is_tall_and_thin_through_its_gloss(encoder):
    est = shape.estimate_shape("a lanky man", encoder)
    assert est.phenotypes["height"] > DEFAULT["height"] + 0.1, est.details["attributes"]["height"]
    assert est.phenotypes["weight"] < DEFAULT["weight"] - 0.1, est.details["attributes"]["weight"]
    assert est.phenotypes["gender"] < 0.3
    assert est.details["attributes"]["height"]["chunk"].startswith("lanky:")    # the gloss said it


def test_stocky_woman_in_her_eighties(encoder):
    est = shape.estimate_shape("a stocky woman in her eighties", encoder)
    assert est.phenotypes["gender"] > 0.7 and est.phenotypes["age"] > 0.85
    assert est.phenotypes["weight"] > DEFAULT["weight"] + 0.1 or est.phenotypes["height"] < DEFAULT["height"] - 0.1


@pytest.mark.parametrize("prompt", ["a short story about dragons", "a heavy metal concert", "an old oak tree"])
def test_ambiguous_adjectives_about_things_keep_the_neutral_body(encoder, prompt):
    est = shape.estimate_shape(prompt, encoder)
    for name, value in est.phenotypes.items():
        assert abs(value - DEFAULT[name]) < 0.05, (prompt, name, est.details["attributes"].get(name))
    assert est.local_changes == {} and est.confidence < 0.3


def test_lexicon_glosses_and_things(tmp_path):
    from avatarforge.backend.text.lexicon import Lexicon

    lexicon = Lexicon({"lanky": [["tall and thin", ["gangly"]]]}, {"dwarf": [["a person who is markedly small", []]]},
                      {"short_story"})
    assert [(g.text, g.noun, g.synonyms) for g in lexicon.glosses("Lanky")] == [("tall and thin", False, ("gangly",))]
    assert lexicon.glosses("dwarf")[0].noun and lexicon.glosses("car") == []
    assert lexicon.names_a_thing(["short", "story"]) and not lexicon.names_a_thing(["short"])
    assert shape.gloss_phrases("tall and thin and having long slender limbs") == \
        ["tall", "thin", "having long slender limbs"]


# -- world knowledge of roles (text/shape/roles.py) and adjectives read as their opposites ---

def test_roles_in_the_curated_table_give_their_build(encoder):
    jockey = shape.estimate_shape("a jockey", encoder)
    assert moved(jockey, "height") < -0.1 and moved(jockey, "weight") < -0.1, jockey.details["attributes"]
    assert any("jockey.n.01" in r for r in jockey.details["roles"])
    putter = shape.estimate_shape("a shot-putter", encoder)
    assert moved(putter, "weight") > 0.1 and moved(putter, "muscle") > 0.1
    assert shape.estimate_shape("a nun", encoder).phenotypes["gender"] > 0.7
    model = shape.estimate_shape("a supermodel", encoder)
    assert model.phenotypes["gender"] > 0.7 and moved(model, "height") > 0.1 and moved(model, "weight") < -0.1


@pytest.mark.parametrize("role, reached", [("quarterback", "football_player.n.01"), ("hurdler", "athlete.n.01"),
                                           ("stevedore", "laborer.n.01")])
def test_roles_never_listed_are_read_through_their_hypernyms(encoder, role, reached):
    from avatarforge.backend.text.lexicon import load_lexicon
    from avatarforge.backend.text.shape.roles import ROLE_BUILDS

    sense = load_lexicon(shape.shape_cache_dir()).person_kinds(role)[0]
    assert sense not in ROLE_BUILDS and not any(role in k for k in ROLE_BUILDS)
    est = shape.estimate_shape(f"a {role}", encoder)
    assert moved(est, "muscle") > 0.1 and any(reached in r for r in est.details["roles"]), est.details["roles"]


def test_role_levels_walk_the_hypernyms_to_the_nearest_curated_class():
    from avatarforge.backend.text.lexicon import Lexicon
    from avatarforge.backend.text.shape.roles import role_levels

    lexicon = Lexicon({}, {"abbess": [["a woman who heads a convent", []]], "chairman": [["the presiding officer", []]]},
                      set(), kinds={"pole_vaulter": ["vaulter.n.01", "athlete.n.01", "person.n.01"],
                                    "abbess": ["abbess.n.01", "superior.n.01", "person.n.01"],
                                    "chairman": ["chairman.n.01", "presiding_officer.n.01", "person.n.01"],
                                    "doctor": ["doctor.n.01", "person.n.01"]}, sexes={"chairman": "male"})
    assert role_levels("pole vaulter", lexicon) == ("vaulter.n.01", {"muscle": "muscular"}, "athlete.n.01")
    assert role_levels("abbess", lexicon)[1] == {"gender": "female"}          # from its gloss
    assert role_levels("chairman", lexicon)[1] == {"gender": "male"}          # from its form
    assert role_levels("doctor", lexicon)[1] == {} and role_levels("car", lexicon) is None


def test_what_the_prompt_says_beats_what_its_role_implies(encoder):
    tall = shape.estimate_shape("a tall jockey", encoder)
    assert moved(tall, "height") > 0.1 and moved(tall, "weight") < -0.1


@pytest.mark.parametrize("prompt", ["a pitcher of water", "a model airplane on a shelf", "a runner bean salad"])
def test_role_words_about_things_keep_the_neutral_body(encoder, prompt):
    est = shape.estimate_shape(prompt, encoder)
    assert est.phenotypes == {k: float(v) for k, v in DEFAULT.items()} and est.confidence < 0.3, est.details["roles"]


def test_adjectives_are_not_read_as_their_opposites(encoder):
    scrawny = shape.estimate_shape("a scrawny man", encoder)
    assert moved(scrawny, "weight") < -0.1 and moved(scrawny, "muscle") < 0.05, scrawny.details["attributes"]
    brawny = shape.estimate_shape("a brawny man", encoder)
    assert moved(brawny, "muscle") > 0.1 and moved(brawny, "weight") > -0.05


def test_the_codebook_and_the_appearance_vocabulary_are_listed_for_the_hold_out_checker():
    from avatarforge.backend.text.appearance import vocabulary_texts

    sentences = shape.build_codebook().sentences
    assert isinstance(sentences, list) and all(isinstance(t, str) for t in sentences) and "a tall person" in sentences
    texts = vocabulary_texts()
    assert {"jeans", "red", "striped", "long hair", "pale skin"} <= set(texts)


def test_caches_are_keyed_by_what_made_them(tmp_path, monkeypatch):
    from avatarforge.backend.core.sources import source_digest
    from avatarforge.backend.models.text_encoder import MiniLMEncoder
    from avatarforge.backend.text.shape.cache import cached_arrays, code_identity, encoder_identity

    class Encoder:
        name = "fake"

        def __init__(self, version):
            self.version = version

    assert encoder_identity(Encoder("a")) != encoder_identity(Encoder("b"))
    assert code_identity(MiniLMEncoder) == source_digest(["backend.models.text_encoder"])
    monkeypatch.setenv("AVATARFORGE_TEXT_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(3)}

    for _ in range(2):
        assert cached_arrays("t", "k", compute)["x"].tolist() == [0, 1, 2]
    assert calls == [1] and [p.name for p in tmp_path.iterdir()] == ["t-k.npz"]     # no temporary left behind


def test_clusters_several_level_adjectives_share_say_their_level():
    from avatarforge.backend.text.lexicon import Lexicon
    from avatarforge.backend.text.shape.adjectives import cluster_levels

    lexicon = Lexicon({}, {}, set(), clusters={"svelte": ["graceful.a.01"], "willowy": ["graceful.a.01"],
                                               "fit": ["fit.a.01"], "giant": ["large.a.01"],
                                               "enormous": ["large.a.01"], "tiny": ["small.a.01"],
                                               "slim": ["small.a.01"]})
    assert cluster_levels(lexicon) == {"graceful.a.01": {"weight": "thin"},             # two thin words
                                       "large.a.01": {"height": "very tall", "weight": "obese"},
                                       "small.a.01": {"height": "very short", "weight": "thin"}}


def test_unplaced_adjectives_are_read_through_their_wordnet_cluster(encoder):
    est = shape.estimate_shape("a lissome woman", encoder)
    assert est.phenotypes["gender"] > 0.7 and moved(est, "weight") < -0.1, est.details["attributes"]["weight"]
    assert est.details["adjectives"] and est.details["adjectives"][0].startswith("lissome:")
