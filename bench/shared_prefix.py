"""Decoding with the prompt prefix every row shares run once per batch, against once per row.

Run: HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2 .venv/bin/python bench/shared_prefix.py [--template vicuna_v1_1]

The pipeline of bench/fixed_positions.py with the real SmolLM2-135M-Instruct weights (the vicuna
plugin's GGUF) and a chat template whose system prompt comes before the audio: batch 4 x 4.0 s
clips, exactly 30 new tokens, greedy and beam 4. "once per row" turns the sharing off (every
row's prefix runs in its own row, as transformers runs it); the tokens must be the same. The
two settings alternate in one process, so they see the same machine load.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixed_positions import BATCH, NEW_TOKENS, SECONDS, SPEC


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="vicuna_v1_1", choices=("vicuna_v1_1", "chat", "slam_llm"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import steps
    import torch

    import slam_core.hf_llm as hf_llm
    from slam_core.runtime.infer.weights import ready_for_decoding

    torch.manual_seed(0)
    spec = {**SPEC, "llm": {"type": "vicuna", "gguf": "smollm2", "dtype": "fp32", "template": args.template}}
    _, model = steps.build(spec)
    device = torch.device("cpu")
    model = ready_for_decoding(model, device)
    batch, _ = steps.fixed_batch(model, BATCH, SECONDS, 1)
    prompts = model.text_inputs(batch.samples, with_targets=False)
    shared = len(prompts.prefix_ids[0])
    sharing = hf_llm.shared_prefix_length

    def decode(beams: int, share: bool) -> list[list[int]]:
        hf_llm.shared_prefix_length = sharing if share else (lambda embeds, mask: 0)
        try:
            return steps.decode_fixed(model, batch, NEW_TOKENS, beams)
        finally:
            hf_llm.shared_prefix_length = sharing

    rows = []
    for name, beams in (("greedy 30 tokens", 1), ("beam 4, 30 tokens", 4)):
        if decode(beams, True) != decode(beams, False):
            sys.exit(f"{name}: sharing the prefix changed the tokens")
        seconds = {True: [], False: []}
        for _ in range(args.repeats):  # alternate, so that both see the same load
            for share in (False, True):
                seconds[share].append(steps.timed(lambda b=beams, s=share: decode(b, s), device, 0, 1).seconds)
        once_per_row, once = (sorted(seconds[s])[len(seconds[s]) // 2] for s in (False, True))
        rows.append([name, f"{once_per_row * 1000:.0f}", f"{once * 1000:.0f}", f"{once_per_row / once:.2f}"])
    audio = int(model.modality_lengths(batch.feature_lengths)[0])
    print(
        f"batch {BATCH} x {SECONDS:g} s ({audio} audio positions each), template {args.template}: a shared prefix of "
        f"{shared} tokens, {len(prompts.suffix_ids[0])} after the audio; SmolLM2-135M fp32, CPU, medians of "
        f"{args.repeats}"
    )
    print(steps.table(["decode", "prefix once per row ms", "once per batch ms", "ratio"], rows))


if __name__ == "__main__":
    main()
