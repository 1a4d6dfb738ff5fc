"""Words from CTC phoneme posteriors: a pronunciation lexicon, a beam search, then the LLM's choice.

The demo's encoder can be trained to spell phonemes (``ctc.targets: phonemes``). A lexicon beam
search, torchaudio's CTC decoder (from flashlight-text), turns each utterance's posteriors into its
N best word sequences, every word one the lexicon can pronounce, so a word never heard in training
can still be written. The LLM then reads each candidate as text, and the candidate with the best
``acoustic score + llm_weight × LLM log-likelihood + word_bonus × words`` wins (N-best rescoring).

The lexicon is ``word<TAB>phonemes`` per line (``make_open_corpus.py`` writes ``lexicon.txt``), a
word on several lines for several pronunciations, phonemes space-separated as in the manifests.
The settings are the ``lexicon`` section of ``recipes/demo/ctc.yaml`` (:class:`LexiconConfig`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from slam_core.errors import SlamError

if TYPE_CHECKING:
    from slam_recipes._demo.ctc import CTCVocabulary

#: The word separator of a manifest's ``phonemes`` field, and the CTC symbol between words.
WORD_BOUNDARY = "|"
BLANK = "<blank>"
UNKNOWN_WORD = "<unk>"


class LexiconConfig(BaseModel):
    """How a phoneme CTC head's posteriors become words (defaults chosen on the open corpus's valid split)."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="the lexicon file (word<TAB>phonemes lines), relative to the settings file")
    beam_size: int = Field(100, gt=0, description="hypotheses kept per frame by the beam search")
    beam_threshold: float = Field(30.0, gt=0, description="hypotheses this far below the best are pruned")
    nbest: int = Field(20, gt=0, description="candidates per utterance the LLM rescores")
    word_score: float = Field(0.0, description="the beam search's score per word (its insertion bonus)")
    llm_weight: float = Field(1.0, ge=0, description="weight of the LLM's log-likelihood; 0 keeps the beam's order")
    word_bonus: float = Field(2.0, description="rescoring bonus per word (against the LLM preferring short text)")
    llm_batch_size: int = Field(32, gt=0, description="candidates per LLM forward pass")


@dataclass(frozen=True)
class Candidate:
    """One word sequence the beam search proposes, with its acoustic score (log domain)."""

    words: tuple[str, ...]
    acoustic: float

    @property
    def text(self) -> str:
        return " ".join(self.words)


def read_lexicon(path: str | Path) -> dict[str, set[tuple[str, ...]]]:
    """``{word: {pronunciation, ...}}`` from a ``word<TAB>phonemes`` file."""
    lexicon: dict[str, set[tuple[str, ...]]] = {}
    path = Path(path)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        word, _, phonemes = line.partition("\t")
        if not word or not phonemes.split() or " " in word:
            raise SlamError(f"{path}:{number}: expected `word<TAB>phonemes`, got {line!r}")
        lexicon.setdefault(word, set()).add(tuple(phonemes.split()))
    if not lexicon:
        raise SlamError(f"{path}: the lexicon is empty")
    return lexicon


class LexiconDecoder:
    """The N best word sequences of CTC phoneme posteriors, each word spelled by the lexicon."""

    def __init__(self, lexicon: dict[str, set[tuple[str, ...]]], vocabulary: CTCVocabulary, config: LexiconConfig):
        from torchaudio.models.decoder import ctc_decoder

        if vocabulary.targets != "phonemes" or WORD_BOUNDARY not in vocabulary.symbols:
            raise SlamError(
                "a lexicon decodes a CTC head over phonemes with word boundaries; this head spells "
                f"{vocabulary.targets} (train the encoder with ctc.targets: phonemes)"
            )
        known = set(vocabulary.symbols) - {WORD_BOUNDARY}
        lines = [
            f"{word} {' '.join(pronunciation)} {WORD_BOUNDARY}\n"  # each word ends at a boundary
            for word, pronunciations in sorted(lexicon.items())
            for pronunciation in sorted(pronunciations)
            if known.issuperset(pronunciation)
        ]
        self.words = {line.split(" ", 1)[0] for line in lines}
        self._boundary = vocabulary.symbols.index(WORD_BOUNDARY) + 1  # its id (0 is the blank)
        if not self.words:
            raise SlamError("no lexicon word can be spelled with the CTC head's phonemes")
        with tempfile.TemporaryDirectory() as folder:  # the decoder reads the lexicon from a file once
            path = Path(folder) / "lexicon.txt"
            path.write_text("".join(lines), encoding="utf-8")
            self._decoder = ctc_decoder(
                lexicon=str(path),
                tokens=[BLANK, *vocabulary.symbols],
                lm=None,
                nbest=config.nbest,
                beam_size=config.beam_size,
                beam_threshold=config.beam_threshold,
                word_score=config.word_score,
                sil_score=0.0,
                blank_token=BLANK,
                sil_token=WORD_BOUNDARY,
                unk_word=UNKNOWN_WORD,
            )

    def candidates(self, log_probs) -> list[Candidate]:
        """The N best of one utterance's ``log_probs [T, V]`` (its valid frames only), best first.

        A frame that is surely a word boundary is appended: the head is trained without one after
        the last word, which the search would otherwise leave unfinished."""
        import torch

        log_probs = log_probs.detach().float().cpu()
        closing = torch.full((1, log_probs.shape[1]), -1e4)
        closing[0, self._boundary] = 0.0
        emissions = torch.cat([log_probs, closing]).contiguous()[None]
        hypotheses = self._decoder(emissions, torch.tensor([emissions.shape[1]]))[0]
        return [Candidate(tuple(w for w in h.words if w != UNKNOWN_WORD), float(h.score)) for h in hypotheses]


def text_log_likelihoods(llm, texts: Sequence[str], batch_size: int = 32) -> list[float]:
    """Each text's summed log-probability under ``llm`` (a SLAM LLM component) as a whole sentence:
    its tokens and the end of sequence, after an end-of-sequence token as the start. The output
    head runs only where a real next token is predicted (:meth:`~slam_core.components.LLM.logits_at`)."""
    import torch

    eos = llm.eos_token_id
    rows = [[eos, *llm.tokenize(" " + text if text else ""), eos] for text in texts]
    scores: list[float] = []
    device = llm.embed(torch.tensor([[eos]])).device
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            width = max(map(len, chunk))
            ids = torch.tensor([row + [eos] * (width - len(row)) for row in chunk], device=device)
            mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in chunk], device=device)
            predicts = torch.zeros_like(mask, dtype=torch.bool)
            predicts[:, :-1] = mask[:, 1:].bool()  # position i predicts token i + 1
            logits = llm.logits_at(llm.embed(ids), mask, predicts)  # [N, V], row-major over predicts
            gold = logits.float().log_softmax(-1).gather(-1, ids[:, 1:][predicts[:, :-1]][:, None])[:, 0]
            rows_of = predicts.nonzero()[:, 0]
            scores += torch.zeros(len(chunk), device=device).index_add(0, rows_of, gold).tolist()
    return scores


def best_candidate(candidates: Sequence[Candidate], llm_scores: Sequence[float], config: LexiconConfig) -> str:
    """The text of the candidate with the best combined score ('' when there is none)."""
    if not candidates:
        return ""
    combined = [
        c.acoustic + config.llm_weight * lm + config.word_bonus * len(c.words)
        for c, lm in zip(candidates, llm_scores, strict=True)
    ]
    return candidates[max(range(len(candidates)), key=combined.__getitem__)].text


def decode_with_lexicon(decoder: LexiconDecoder, llm, log_probs, lengths, config: LexiconConfig) -> list[str]:
    """The chosen text of each row of ``log_probs [B, T, V]`` (``lengths``: valid frames per row)."""
    texts = []
    for row, length in enumerate(lengths.tolist()):
        candidates = decoder.candidates(log_probs[row, :length])
        if candidates and config.llm_weight > 0 and llm is not None:
            llm_scores = text_log_likelihoods(llm, [c.text for c in candidates], config.llm_batch_size)
        else:
            llm_scores = [0.0] * len(candidates)
        texts.append(best_candidate(candidates, llm_scores, config))
    return texts


class LexiconTranscriber:
    """Audio features -> encoder -> CTC phoneme posteriors -> lexicon candidates -> the LLM's choice."""

    def __init__(self, encoder, head, decoder: LexiconDecoder, llm, config: LexiconConfig):
        self.encoder, self.head, self.decoder, self.llm, self.config = encoder, head, decoder, llm, config

    def __call__(self, features, lengths) -> list[str]:
        import torch

        with torch.no_grad():
            hidden, frames = self.encoder(features, lengths)
            log_probs = self.head(hidden).log_softmax(-1)
        return decode_with_lexicon(self.decoder, self.llm, log_probs, frames, self.config)
