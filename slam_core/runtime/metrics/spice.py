"""SPICE through the SPICE 1.0 jar (Anderson et al. 2016), run the way pycocoevalcap's ``Spice`` runs it.

SPICE needs Java and ``spice-1.0.jar`` with Stanford CoreNLP 3.6.0 (``stanford-corenlp-3.6.0.jar``
and ``stanford-corenlp-3.6.0-models.jar``) in the ``lib/`` folder beside it. pycocoevalcap ships
the SPICE jar and its other libraries but downloads CoreNLP from nlp.stanford.edu on first use;
here nothing is downloaded. The jar is found at the ``spice_jar`` option, else ``$SLAM_SPICE_JAR``,
else pycocoevalcap's bundled copy. The score is pycocoevalcap's: the mean over items of the
``All`` F-score the jar reports (the jar is run with ``-subset -silent``, no cache). SPICE 1.0 was
built for Java 8; on Java 9+ its serialiser needs ``--add-opens``, which is passed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from slam_core.runtime.metrics.java import find_java, java_major_version

SPICE_JAR_ENV = "SLAM_SPICE_JAR"
CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
_OPENS = ("java.lang", "java.util", "java.math", "java.text", "java.io", "java.net", "java.util.concurrent")

HOW_TO_INSTALL = (
    "SPICE needs Java (SPICE 1.0 is known to run on Java 8 and 11), spice-1.0.jar (bundled with pycocoevalcap, or "
    "from the SPICE 1.0 distribution), and stanford-corenlp-3.6.0.jar + stanford-corenlp-3.6.0-models.jar "
    "(from stanford-corenlp-full-2015-12-09.zip) in the lib/ folder beside the jar; point the "
    f"{SPICE_JAR_ENV} environment variable or the spice_jar= option at spice-1.0.jar"
)


def find_spice_jar(spice_jar: str | os.PathLike | None = None) -> Path | None:
    """The SPICE jar: ``spice_jar``, else ``$SLAM_SPICE_JAR``, else pycocoevalcap's copy; None if none is set."""
    location = spice_jar or os.environ.get(SPICE_JAR_ENV)
    if location:
        return Path(location)
    try:
        import pycocoevalcap.spice.spice as bundled
    except ImportError:
        return None
    return Path(bundled.__file__).with_name(bundled.SPICE_JAR)


def spice_unavailable(spice_jar: str | os.PathLike | None = None, java: str | None = None) -> str | None:
    """Why SPICE cannot run here, or None if it can."""
    if find_java(java) is None:
        return f"no Java runtime found ({java or 'java'} is not on PATH). {HOW_TO_INSTALL}"
    jar = find_spice_jar(spice_jar)
    if jar is None or not jar.is_file():
        return f"no SPICE jar at {jar or 'any known place'}. {HOW_TO_INSTALL}"
    missing = [name for name in CORENLP_JARS if not (jar.parent / "lib" / name).is_file()]
    if missing:
        return f"{', '.join(missing)} missing from {jar.parent / 'lib'}. {HOW_TO_INSTALL}"
    return None


def spice(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    spice_jar: str | os.PathLike | None = None,
    java: str | None = None,
    memory: str = "8G",
) -> float:
    """Mean SPICE F-score of (tokenised) hypotheses against their references; NaN items make it NaN."""
    reason = spice_unavailable(spice_jar, java)
    if reason is not None:
        raise FileNotFoundError(reason)
    executable, jar = find_java(java), find_spice_jar(spice_jar)
    items = [
        {"image_id": i, "test": h, "refs": list(r)} for i, (h, r) in enumerate(zip(hypotheses, references, strict=True))
    ]
    opens = [f"--add-opens=java.base/{p}=ALL-UNNAMED" for p in _OPENS]
    with tempfile.TemporaryDirectory(prefix="slam-spice-") as tmp:
        in_file, out_file = Path(tmp, "in.json"), Path(tmp, "out.json")
        in_file.write_text(json.dumps(items))
        cmd = [executable, *(opens if (java_major_version(executable) or 8) >= 9 else [])]
        cmd += ["-jar", f"-Xmx{memory}", str(jar), str(in_file), "-out", str(out_file), "-subset", "-silent"]
        run = subprocess.run(cmd, cwd=jar.parent, capture_output=True, text=True, check=False)
        if run.returncode:
            raise RuntimeError(f"SPICE failed (exit {run.returncode}): {run.stderr[-2000:]}")
        results = json.loads(out_file.read_text())
    by_id = {item["image_id"]: item["scores"]["All"]["f"] for item in results}
    scores = [math.nan if by_id[i] is None else float(by_id[i]) for i in range(len(items))]
    return sum(scores) / len(scores)
