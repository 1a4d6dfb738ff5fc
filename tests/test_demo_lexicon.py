"""The demo's lexicon decoding (slam_recipes._demo.lexicon): CTC phoneme posteriors -> words -> the LLM's choice."""

from __future__ import annotations

import pytest
import torch
from slam_recipes._demo import ctc, lexicon
from support.demo import TOY_LLM

from slam_core.errors import SlamError

pytest.importorskip("flashlight.lib.text", reason="flashlight-text is not installed")

SYMBOLS = ["a", "k", "p", "t", "|"]  # ids 1..5; 0 is the blank
LEXICON = {"cat": {("k", "a", "t")}, "cap": {("k", "a", "p")}, "at": {("a", "t")}, "pat": {("p", "a", "t")}}


def _config(**settings) -> lexicon.LexiconConfig:
    return lexicon.LexiconConfig(path="lexicon.txt", **settings)


def _vocabulary():
    return ctc.CTCVocabulary.from_symbols(SYMBOLS, "phonemes")


def _posteriors(path: list[str], confidence: float = 0.9):
    """Log-posteriors ``[T, 6]`` whose best path spells ``path`` (``-``: the blank), ``confidence`` on it."""
    ids = [0 if symbol == "-" else SYMBOLS.index(symbol) + 1 for symbol in path]
    probs = torch.full((len(ids), len(SYMBOLS) + 1), (1 - confidence) / len(SYMBOLS))
    probs[torch.arange(len(ids)), ids] = confidence
    return probs.log()


def test_the_beam_search_spells_only_lexicon_words_and_ranks_the_best_path_first():
    decoder = lexicon.LexiconDecoder(LEXICON, _vocabulary(), _config(nbest=5))
    candidates = decoder.candidates(_posteriors(["k", "a", "a", "t", "|", "-", "a", "t", "-"]))
    assert candidates[0].words == ("cat", "at")
    assert all(set(c.words) <= set(LEXICON) for c in candidates)
    assert [c.acoustic for c in candidates] == sorted((c.acoustic for c in candidates), reverse=True)
    assert len({c.words for c in candidates}) == len(candidates) > 1


def test_the_llm_score_can_overturn_the_acoustic_order_and_the_word_bonus_counts_words():
    config = _config(llm_weight=1.0, word_bonus=0.0)
    cap, cat = lexicon.Candidate(("cap",), -1.0), lexicon.Candidate(("cat",), -1.5)
    assert lexicon.best_candidate([cap, cat], [-9.0, -3.0], config) == "cat"
    assert lexicon.best_candidate([cap, cat], [-9.0, -3.0], config.model_copy(update={"llm_weight": 0.0})) == "cap"
    two = lexicon.Candidate(("at", "at"), -2.0)
    assert lexicon.best_candidate([cap, two], [0.0, 0.0], config) == "cap"
    assert lexicon.best_candidate([cap, two], [0.0, 0.0], config.model_copy(update={"word_bonus": 1.5})) == "at at"
    assert lexicon.best_candidate([], [], config) == ""


def test_the_llm_log_likelihood_of_a_batch_equals_each_text_scored_alone():
    from slam_recipes._demo import run as demo

    from slam_core.model import build_component
    from slam_core.spec import validate_spec

    spec = validate_spec(demo.load_demo_spec(overrides=TOY_LLM)[0])
    torch.manual_seed(0)
    llm = build_component("llm", spec.llm).eval()
    texts = ["the cat sat", "a", "a much longer sentence than the others here", ""]
    batched = lexicon.text_log_likelihoods(llm, texts, batch_size=4)
    alone = [lexicon.text_log_likelihoods(llm, [text])[0] for text in texts]
    assert batched == pytest.approx(alone, rel=1e-4)
    # the reference: the summed log-softmax of each next token, computed directly
    eos = llm.eos_token_id
    ids = torch.tensor([[eos, *llm.tokenize(" the cat sat"), eos]])
    with torch.no_grad():
        log_probs = llm(llm.embed(ids), torch.ones_like(ids)).logits.log_softmax(-1)
    assert alone[0] == pytest.approx(float(log_probs[0, :-1].gather(-1, ids[0, 1:, None]).sum()), rel=1e-5)
    assert all(score < 0 for score in batched)


def test_decoding_a_padded_batch_gives_each_row_its_own_words():
    config = _config(nbest=4, llm_weight=0.0)
    decoder = lexicon.LexiconDecoder(LEXICON, _vocabulary(), config)
    rows = [_posteriors(["p", "a", "t", "-", "|", "a", "t"]), _posteriors(["k", "a", "p", "|"])]
    log_probs = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)  # the second row padded with zeros
    texts = lexicon.decode_with_lexicon(decoder, None, log_probs, torch.tensor([7, 4]), config)
    assert texts == ["pat at", "cap"]


def test_a_lexicon_file_round_trips_and_bad_lines_or_heads_are_refused(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_text("cat\tk a t\nat\ta t\nat\t@ t\n\n", encoding="utf-8")
    assert lexicon.read_lexicon(path) == {"cat": {("k", "a", "t")}, "at": {("a", "t"), ("@", "t")}}
    path.write_text("cat k a t\n", encoding="utf-8")
    with pytest.raises(SlamError, match=r"lexicon.txt:1: expected `word<TAB>phonemes`"):
        lexicon.read_lexicon(path)
    characters = ctc.CTCVocabulary([list("cat")])
    with pytest.raises(SlamError, match="this head spells characters"):
        lexicon.LexiconDecoder(LEXICON, characters, _config())
    with pytest.raises(SlamError, match="no lexicon word can be spelled"):
        lexicon.LexiconDecoder({"dog": {("d", "o", "g")}}, _vocabulary(), _config())


def test_the_lexicon_settings_load_with_their_path_from_the_yaml_folder(tmp_path):
    settings = "targets: phonemes\nlexicon:\n  path: data/lexicon.txt\n  nbest: 7\n"
    (tmp_path / "ctc.yaml").write_text(settings, encoding="utf-8")
    config = ctc.load_ctc_config(tmp_path / "ctc.yaml")
    assert config.lexicon.nbest == 7 and config.lexicon.path == str((tmp_path / "data" / "lexicon.txt").resolve())
    with pytest.raises(ValueError, match="lexicon decoding reads phonemes: set targets: phonemes"):
        ctc.load_ctc_config(tmp_path / "ctc.yaml", {"targets": "characters"})
