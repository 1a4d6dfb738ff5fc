"""hf-audio against transformers: each clip of a padded batch equals the transformers model run on it alone.

The reference is the model's own ``forward`` on one unpadded clip (``output_hidden_states=True``):
``last_hidden_state`` for ``layer: null``, ``hidden_states[k]`` for ``layer: k``, and the mean of all
``hidden_states`` for ``layer: weighted`` (its weights start at zero, a uniform softmax).
"""

from __future__ import annotations

import pytest
import torch
from hf_testing import FAMILIES, STABLE, TINY_LLM, save_tiny

from slam_core.features import pad
from slam_core.model import build_component
from slam_core.spec import validate_spec

#: 16 kHz clips: 199, 119, 79 frames and the 40-sample receptive field (one frame), padded into one batch.
SIZES = (4000, 2400, 1601, 40)
#: The largest difference seen (fp32, CPU) was 5e-6; this leaves room for other BLAS builds.
ATOL = 2e-5
VARIANTS = [(family, {}) for family in FAMILIES] + [
    (family, STABLE) for family in ("wav2vec2", "hubert", "wavlm")
]  # data2vec-audio has no pre-LN / layer-norm conv option


def encoder(family, folder, layer, normalize=None):
    spec = validate_spec(
        {
            "encoder": {"type": family, "path": str(folder), "layer": layer, "normalize": normalize},
            "projector": {"type": "linear-projector", "k": 2, "hidden_dim": 8},
            "llm": {"type": "toy-llm", "shape": TINY_LLM},
            "task": {"type": "asr"},
        }
    )
    return build_component("encoder", spec.encoder).eval()


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda v: v[0] + ("-preln" if v[1] else ""))
def checkpoint(request, tmp_path_factory):
    family, fields = request.param
    folder = tmp_path_factory.mktemp(family)
    return family, folder, save_tiny(folder, family, seed=3, **fields)


def clips(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [0.1 * torch.randn(n, generator=generator) for n in SIZES]


def reference(model, waveform, layer):
    with torch.no_grad():
        output = model(waveform[None], output_hidden_states=True)
    if layer is None:
        return output.last_hidden_state[0]
    if layer == "weighted":
        return torch.stack(output.hidden_states).mean(0)[0]
    return output.hidden_states[layer][0]


@pytest.mark.parametrize("layer", [None, 0, 1, -1, "weighted"])
def test_each_clip_of_a_padded_batch_equals_transformers_on_the_clip_alone(checkpoint, layer):
    family, folder, model = checkpoint
    ours = encoder(family, folder, layer)
    waveforms = clips()
    features, lengths = pad([ours.preprocess(w.numpy()) for w in waveforms])
    with torch.no_grad():
        hidden, out_lengths = ours(features, lengths)
    for index, waveform in enumerate(waveforms):
        expected = reference(model, waveform, layer)
        frames = int(out_lengths[index])
        assert frames == expected.shape[0] == int(model._get_feat_extract_output_lengths(torch.tensor(SIZES[index])))
        torch.testing.assert_close(hidden[index, :frames], expected, atol=ATOL, rtol=0)
        assert hidden[index, frames:].eq(0).all(), "frames past a clip's length are zero"


def test_normalisation_is_the_feature_extractors(checkpoint):
    from transformers import Wav2Vec2FeatureExtractor

    family, folder, _ = checkpoint
    ours = encoder(family, folder, None, normalize=True)
    extractor = Wav2Vec2FeatureExtractor(do_normalize=True)
    waveform = clips(1)[0]
    expected = torch.as_tensor(extractor(waveform.numpy(), sampling_rate=16000).input_values[0])
    torch.testing.assert_close(ours.preprocess(waveform.numpy()), expected, atol=1e-5, rtol=1e-5)
