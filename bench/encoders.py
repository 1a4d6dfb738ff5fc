"""Encoder throughput: seconds of audio (or lip video) processed per wall-clock second, per installed encoder.

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/encoders.py [--seconds 10 --batch 4 --repeat 3]

Small configs with random weights (real widths, few layers) so it runs on a CPU in a minute;
on a GPU (when one is visible) the forward pass is also timed in bf16. Preprocessing (features
on the CPU, as in DataLoader workers) and the forward pass are timed separately; the table
reports medians and, for comparison inside one run, each row's ratio to the toy encoder.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from slam_core import features as feature_ops
from slam_core import plugins
from slam_core.audio import RawAudio
from slam_core.model import build_component
from slam_core.video import RawAudioVisual, RawVideo

#: type -> small config (real width, 2 layers); types that are not installed are skipped.
SMALL_CONFIGS = {
    "toy-encoder": {"shape": {"hidden_size": 256, "num_layers": 2, "num_heads": 4}},
    "whisper": {"size": "tiny", "shape": {"num_layers": 2}},
    "beats": {"shape": {"num_layers": 2}},
    "mert": {"size": "95m", "shape": {"num_layers": 2}},
    "av-hubert": {"size": "base", "modality": "video", "shape": {"num_layers": 2}},
}
#: Lip crops as av_hubert's preparation stores them: 96 x 96 grayscale at 25 fps.
CROP, FPS, AUDIO_RATE = 96, 25.0, 16000


def raw_clip(modality: str, rate: int, seconds: float, generator: torch.Generator):
    """A random clip of ``seconds`` in the form the data pipeline gives an encoder of ``modality``."""
    audio = RawAudio(0.1 * torch.randn(int(seconds * AUDIO_RATE), generator=generator), AUDIO_RATE)
    frames = torch.randint(0, 256, (int(seconds * FPS), CROP, CROP), generator=generator, dtype=torch.uint8)
    video = RawVideo(np.asarray(frames), FPS)
    if modality == "video":
        return video
    if modality == "audio-visual":
        return RawAudioVisual(video, audio)
    return RawAudio(0.1 * torch.randn(int(seconds * rate), generator=generator), rate)


def timed(function, repeat: int) -> float:
    """Median seconds of ``function()`` over ``repeat`` runs (after one warm-up)."""
    function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, config: dict, seconds: float, batch: int, repeat: int, device: str, dtype) -> dict:
    registry = plugins.registry()
    spec = registry.get("encoder", name).spec.config.model_validate({"type": name, **config})
    encoder = build_component("encoder", spec, registry).eval()
    preprocess = encoder.preprocessor()
    generator = torch.Generator().manual_seed(0)
    clips = [raw_clip(encoder.modality, encoder.sample_rate, seconds, generator)] * batch
    preprocess_s = timed(lambda: [preprocess(clip) for clip in clips], repeat)
    features, lengths = feature_ops.pad([feature_ops.as_features(preprocess(clip)) for clip in clips])
    features = feature_ops.apply(features, lambda tensor: tensor.to(device=device, dtype=dtype))
    lengths = lengths.to(device)
    encoder = encoder.to(device=device, dtype=dtype)
    with torch.inference_mode():
        forward_s = timed(lambda: encoder(features, lengths), repeat)
    audio = seconds * batch
    return {
        "encoder": name,
        "device": f"{device}/{str(dtype).removeprefix('torch.')}",
        "params_m": sum(p.numel() for p in encoder.parameters()) / 1e6,
        "preprocess": audio / preprocess_s,
        "forward": audio / forward_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    installed = set(plugins.registry().names("encoder"))
    targets = [("cpu", torch.float32)] + ([("cuda", torch.bfloat16)] if torch.cuda.is_available() else [])
    rows = [
        measure(name, config, args.seconds, args.batch, args.repeat, device, dtype)
        for device, dtype in targets
        for name, config in SMALL_CONFIGS.items()
        if name in installed
    ]
    print(f"clips: {args.batch} x {args.seconds:g} s; throughput in media seconds per second (median of {args.repeat})")
    print(f"{'encoder':<12} {'device':<15} {'params M':>9} {'preprocess':>11} {'forward':>10} {'fwd/toy':>8}")
    for row in rows:
        toy = next((r for r in rows if r["encoder"] == "toy-encoder" and r["device"] == row["device"]), None)
        ratio = f"{row['forward'] / toy['forward']:.2f}" if toy else "-"
        print(
            f"{row['encoder']:<12} {row['device']:<15} {row['params_m']:>9.1f} {row['preprocess']:>11.0f} "
            f"{row['forward']:>10.0f} {ratio:>8}"
        )


if __name__ == "__main__":
    main()
