"""The mc, aac, st and vsr task heads (asr: tests/test_toy_components.py and test_task_prompts.py)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from slam_core.model import build_component
from slam_core.runtime.metrics import metric_availability, score
from slam_core.runtime.tasks.configs import AACTaskConfig, ASRTaskConfig, MCTaskConfig, STTaskConfig, VSRTaskConfig

GENRES = ["blues", "classical", "country", "disco", "Hip Hop", "jazz", "metal", "pop", "reggae", "rock"]


def mc(**settings):
    return build_component("task", MCTaskConfig(labels=GENRES, **settings))


# ----------------------------------------------------------------------------- mc


def test_mc_prompt_lists_the_labels_and_choices_are_the_labels():
    head = mc()
    assert head.instruction({}) == (
        "What is the genre of this music? Answer with one of: blues, classical, country, disco, Hip Hop, jazz, "
        "metal, pop, reggae, rock."
    )
    assert head.choices({"key": "x"}) == GENRES
    assert head.metrics == ("accuracy", "macro_f1")
    custom = mc(prompt="Genre? [{labels}]", label_separator="/")
    assert custom.instruction({}) == "Genre? [blues/classical/country/disco/Hip Hop/jazz/metal/pop/reggae/rock]"
    assert mc(prompt="Which genre is it?").instruction({}) == "Which genre is it?"  # {labels} is optional


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(GENRES), st.data())
def test_mc_postprocess_maps_case_and_white_space_variants_to_the_label(label, data):
    variant = "".join(c.upper() if data.draw(st.booleans()) else c.lower() for c in label)
    variant = data.draw(st.sampled_from(["", " ", "\n"])) + variant.replace(
        " ", data.draw(st.sampled_from([" ", "  "]))
    )
    variant += data.draw(st.sampled_from(["", ".", " ", " .\n"]))
    assert mc().postprocess(variant) == label


def test_mc_postprocess_leaves_other_text_and_target_canonicalises():
    head = mc()
    assert head.postprocess("  some  other   genre ") == "some other genre"
    assert head.target({"key": "k", "target": "HIP  HOP"}) == "Hip Hop"
    assert head.target({"key": "k", "target": "jazz"}) == "jazz"


def test_mc_target_outside_the_labels_names_the_sample_and_the_labels():
    with pytest.raises(ValueError, match=r"mc sample 'gtzan.00042': target 'polka' is not one of the labels \['blues'"):
        mc().target({"key": "gtzan.00042", "target": "polka"})
    with pytest.raises(KeyError, match=r"'gtzan\.7' has no 'target' field"):
        mc().target({"key": "gtzan.7"})


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([], "labels is empty"),
        (["rock", " Rock "], "'rock' and ' Rock ' are the same label"),
        (["rock", "  "], "label '  ' is empty"),
    ],
)
def test_mc_labels_must_be_unique_and_non_empty(labels, message):
    with pytest.raises(ValidationError, match=message):
        MCTaskConfig(labels=labels)
    with pytest.raises(ValidationError, match="labels"):
        MCTaskConfig.model_validate({"type": "mc"})


def test_mc_scores_accuracy_and_macro_f1():
    head = mc()
    samples = [{"key": str(i), "target": t} for i, t in enumerate(["rock", "jazz", "hip hop", "jazz"])]
    hypotheses = [head.postprocess(h) for h in ["Rock.", "jazz", "pop", "JAZZ"]]
    result = score(head.metrics, hypotheses, [head.target(s) for s in samples])
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["macro_f1"] == pytest.approx(2 / 3)  # rock 1, jazz 1, hip hop 0


# ----------------------------------------------------------------------------- aac


CLOTHO = {"key": "clip", "target": ["a dog barks", "a dog is barking loudly", "barking", "a hound", "dogs bark"]}


def test_aac_training_learns_each_caption_and_evaluation_the_first():
    head = build_component("task", AACTaskConfig())
    random.seed(0)
    learned = {head.target(head.prepare([CLOTHO], training=True)[0]) for _ in range(200)}
    assert learned == set(CLOTHO["target"])
    assert head.target(head.prepare([CLOTHO], training=False)[0]) == "a dog barks"
    assert head.target(CLOTHO) == "a dog barks"
    assert head.references(CLOTHO) == CLOTHO["target"]
    single = {"key": "ac", "target": "rain falls"}
    assert head.target(head.prepare([single], training=True)[0]) == "rain falls"
    assert head.references(single) == ["rain falls"]
    assert head.instruction(CLOTHO) == "Describe the audio you hear."


def test_aac_caption_choice_is_deterministic_and_evaluation_needs_no_target():
    head = build_component("task", AACTaskConfig())

    def run(seed):
        random.seed(seed)
        return [head.target(s) for s in head.prepare([CLOTHO] * 20, training=True)]

    assert run(1) == run(1) and run(1) != run(2)
    assert head.prepare([{"key": "no-target"}], training=False)[0]["key"] == "no-target"


@pytest.mark.parametrize("target", [[], ["ok", ""], "", ["ok", 3], {"a": 1}])
def test_aac_bad_captions_name_the_sample(target):
    head = build_component("task", AACTaskConfig())
    with pytest.raises(ValueError, match="aac sample 'bad': 'target' must be a caption or a non-empty list"):
        head.target({"key": "bad", "target": target})


def test_aac_default_metrics_are_those_that_run_here():
    head = build_component("task", AACTaskConfig())
    available = metric_availability()
    expected = tuple(m for m in ("cider_d", "spice", "spider") if available[m] is None) or ("cider_d",)
    assert head.metrics == expected
    assert build_component("task", AACTaskConfig(metrics=["spice"])).metrics == ("spice",)


def test_aac_scores_against_every_reference():
    head = build_component("task", AACTaskConfig())
    samples = [CLOTHO, {"key": "b", "target": ["rain falls on a roof", "heavy rain"]}]
    references = [head.references(s) for s in samples]
    result = score(["cider_d"], ["a dog is barking loudly", "heavy rain"], references, caption_tokenizer="python")
    first_only = score(["cider_d"], ["a dog is barking loudly", "heavy rain"], [head.target(s) for s in samples])
    assert result["cider_d"] > first_only["cider_d"]


# ----------------------------------------------------------------------------- st


def test_st_prompt_languages_from_config_or_sample():
    head = build_component("task", STTaskConfig(target_lang="German"))
    assert head.instruction({"key": "a"}) == "Translate the English speech into German."
    assert head.instruction({"key": "a", "target_lang": "Japanese"}) == "Translate the English speech into Japanese."
    french = build_component("task", STTaskConfig(source_lang="French", target_lang="English"))
    assert french.instruction({}) == "Translate the French speech into English."
    assert head.metrics == ("bleu",)


def test_st_source_text_slot_and_missing_source_text():
    head = build_component("task", STTaskConfig(target_lang="de", prompt='"{source_text}" in {target_lang}:'))
    assert head.instruction({"key": "a", "source_text": "Hello."}) == '"Hello." in de:'
    with pytest.raises(KeyError, match="st sample 'a' has no 'source_text' field"):
        head.instruction({"key": "a"})
    with pytest.raises(ValueError, match="'target_lang' must be a language name"):
        head.instruction({"key": "a", "source_text": "x", "target_lang": ""})


def test_st_transcript_first_target_and_postprocess():
    head = build_component("task", STTaskConfig(target_lang="German", transcript_first=True, separator=" => "))
    sample = {"key": "a", "source_text": "The weather is nice today.", "target": "Das Wetter ist heute schön."}
    assert head.target(sample) == "The weather is nice today. => Das Wetter ist heute schön."
    assert head.references(sample) == ["Das Wetter ist heute schön."]
    assert head.postprocess(" The weather is nice today. =>  Das  Wetter ist heute schön. ") == (
        "Das Wetter ist heute schön."
    )
    assert head.postprocess("no separator here") == "no separator here"
    plain = build_component("task", STTaskConfig(target_lang="German"))
    assert plain.target(sample) == "Das Wetter ist heute schön."
    assert plain.postprocess("a => b") == "a => b"


def test_st_config_requires_a_target_language():
    with pytest.raises(ValidationError, match="target_lang"):
        STTaskConfig()
    with pytest.raises(ValidationError, match="separator"):
        STTaskConfig(target_lang="de", separator="")


# ----------------------------------------------------------------------------- vsr / asr


def test_vsr_is_transcription_with_its_own_prompt():
    vsr = build_component("task", VSRTaskConfig(lowercase_target=True))
    asr = build_component("task", ASRTaskConfig(lowercase_target=True))
    sample = {"key": "lrs3", "target": "HELLO  THERE"}
    assert vsr.target(sample) == asr.target(sample) == "hello  there"
    assert vsr.postprocess(" hello \n there ") == "hello there"
    assert "lip" in vsr.instruction(sample) and vsr.instruction(sample) != asr.instruction(sample)
    assert vsr.metrics == ("wer",)
    with pytest.raises(TypeError, match="vsr sample 'lrs3': 'target' must be a string"):
        vsr.target({"key": "lrs3", "target": ["a"]})
