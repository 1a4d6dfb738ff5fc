"""Caption tokenisation before CIDEr-D and SPICE, as in the COCO caption evaluation (pycocoevalcap).

``ptb`` runs Stanford CoreNLP 3.4.1's PTBTokenizer (the jar pycocoevalcap ships) with
``-preserveLines -lowerCase`` and drops pycocoevalcap's punctuation tokens, exactly what
``pycocoevalcap.tokenizer.ptbtokenizer.PTBTokenizer`` does, but through stdin rather than a
temporary file in the installed package. It needs Java.

``python`` is a pure-Python approximation of that for machines without Java: lower case,
PTB-style splitting of punctuation and clitics ("isn't" -> "is n't", "dog's" -> "dog 's",
"cannot" -> "can not"), dotted abbreviations kept ("u.s.", "mr."), numbers with separators kept
("3.5", "1,000"), then the same punctuation removed. As with the jar, brackets become ``-lrb-``
etc. and survive: pycocoevalcap's filter lists them upper-case while ``-lowerCase`` lower-cases
them. Known differences from the jar (checked on a set of captions in the tests): PTB keeps
``#hash``, ``@user`` and ``<tag>`` whole, splits ``rock'n'roll``, ``y'all``, ``'tis`` and
``word'quoted'``, and writes ``½`` as ``1/2``; the Python rules do the opposite.
"""

from __future__ import annotations

import re
import subprocess
import warnings
from collections.abc import Sequence
from pathlib import Path

from pycocoevalcap.tokenizer import ptbtokenizer
from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS

from slam_core.runtime.metrics.java import find_java

TOKENIZERS = ("auto", "ptb", "python")

_PTB_CLASS = "edu.stanford.nlp.process.PTBTokenizer"
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
#: Curly quotes, en/em dashes and the ellipsis character, as PTBTokenizer normalises them.
_UNICODE = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "--", "\u2014": "--", "\u2026": "..."}
)
#: Words PTBTokenizer splits in two.
_PTB_SPLITS = {
    "cannot": "can not",
    "gonna": "gon na",
    "gotta": "got ta",
    "wanna": "wan na",
    "lemme": "lem me",
    "gimme": "gim me",
}
_CLITIC = re.compile(r"(?<=\w)(n't|'s|'re|'ve|'ll|'d|'m)$")
_TOKEN = re.compile(
    r"(?:[^\W\d_]\.){2,}"  # dotted abbreviations: u.s., e.g., a.m.
    r"|(?:mr|mrs|ms|dr|st|jr|sr|prof|vs|etc)\.(?!\w)"  # titles keep their period
    r"|\d+(?:[.,:/]\d+)+"  # 3.5, 1,000, 5:30, 3/4
    r"|'(?:em|n'|\d0s)(?!\w)"  # 'em, 'n', '90s stay whole
    r"|\w+(?:[-'/]\w+)*"  # words, hyphenated words, o'clock, and/or
    r"|\.{2,}|-{2,}|[!?]{2,}"  # ellipses, dashes, repeated marks (PTB keeps "!!")
    r"|\S"  # any other character alone
)


def ptb_jar() -> Path:
    """The Stanford CoreNLP 3.4.1 jar bundled with pycocoevalcap."""
    return Path(ptbtokenizer.__file__).with_name(ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR)


def _words(token: str) -> list[str]:
    if token in _PTB_SPLITS:
        return _PTB_SPLITS[token].split()
    clitics = []
    while (match := _CLITIC.search(token)) is not None:
        clitics.insert(0, match.group(1))
        token = token[: match.start()]
    return [token, *clitics]


def python_tokenize(caption: str) -> str:
    """Pure-Python PTB-like tokenisation of one caption, punctuation removed (see module doc)."""
    tokens = []
    for token in _TOKEN.findall(caption.lower().translate(_UNICODE)):
        if token in _BRACKETS:
            tokens.append(_BRACKETS[token])
        elif token[0].isalnum() or token[0] == "_":
            tokens.extend(_words(token))
        elif token != '"' and not re.fullmatch(r"\.+", token):
            tokens.append(token)
    return " ".join(t for t in tokens if t not in PUNCTUATIONS)


def ptb_tokenize(captions: Sequence[str], *, java: str | None = None) -> list[str]:
    """CoreNLP PTBTokenizer tokenisation of each caption, punctuation removed (pycocoevalcap's)."""
    executable = find_java(java)
    if executable is None:
        raise FileNotFoundError("the PTB tokenizer needs Java: install a JRE (e.g. apt-get install default-jre)")
    lines = [c.replace("\n", " ").replace("\r", " ") for c in captions]
    todo = [i for i, line in enumerate(lines) if line.strip()]
    cmd = [executable, "-cp", str(ptb_jar()), _PTB_CLASS, "-preserveLines", "-lowerCase"]
    text = "\n".join(lines[i] for i in todo) + "\n"
    run = subprocess.run(cmd, input=text.encode(), capture_output=True, check=False)
    out = run.stdout.decode().split("\n")
    if run.returncode or len(out) < len(todo):
        raise RuntimeError(f"PTBTokenizer failed (exit {run.returncode}): {run.stderr.decode()[-2000:]}")
    tokenized = [""] * len(lines)
    for i, line in zip(todo, out[: len(todo)], strict=True):
        tokenized[i] = " ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS)
    return tokenized


def tokenize_captions(captions: Sequence[str], *, tokenizer: str = "auto", java: str | None = None) -> list[str]:
    """Tokenise captions with ``ptb``, ``python``, or ``auto`` (``ptb`` when Java is found, else ``python``)."""
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"unknown caption_tokenizer={tokenizer!r}; choose one of {', '.join(TOKENIZERS)}")
    if tokenizer == "auto":
        if find_java(java) is not None:
            tokenizer = "ptb"
        else:
            warnings.warn(
                "no Java found: captions are tokenised by the pure-Python PTB approximation, which can differ "
                "from pycocoevalcap's PTBTokenizer on rare tokens; install a JRE for the reference tokenisation",
                stacklevel=2,
            )
            tokenizer = "python"
    if tokenizer == "ptb":
        return ptb_tokenize(captions, java=java)
    return [python_tokenize(c) for c in captions]
