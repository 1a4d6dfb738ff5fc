"""The hidden states of a (possibly truncated) HF HuBERT transformer, in upstream MERT's numbering.

State 0 is the input of the first layer (after the positional convolution, and after the input
LayerNorm of a post-LN model); state ``i`` is layer ``i``'s output. A pre-LN model
(``do_stable_layer_norm``, MERT-v1-330M) applies its final LayerNorm to the last state only, as
upstream's ``output_hidden_states`` does (under transformers 4.x, which it was written for;
transformers 5's ``HubertModel(output_hidden_states=True)`` leaves that LayerNorm off the last state).
Keeping the first ``k`` layers (:func:`truncate`) gives exactly states ``0..k`` of the full model.
"""

from __future__ import annotations

import torch
from torch import nn


def truncate(encoder: nn.Module, keep: int) -> None:
    """Drop the layers after ``keep`` (and a pre-LN model's final LayerNorm, which then is not used)."""
    if keep < len(encoder.layers):
        encoder.layers = encoder.layers[:keep]
        if encoder.config.do_stable_layer_norm:
            encoder.layer_norm = nn.Identity()


def hidden_states(encoder: nn.Module, hidden: torch.Tensor, valid: torch.Tensor) -> list[torch.Tensor]:
    """States ``0..len(layers)`` ``[B, T, D]`` of ``hidden`` (projected conv features); ``valid [B, T]``
    marks real frames: padding is zeroed before the positional convolution and masked out of attention."""
    from transformers.masking_utils import create_bidirectional_mask

    pre_ln = encoder.config.do_stable_layer_norm
    hidden = hidden * valid[..., None].to(hidden.dtype)
    mask = create_bidirectional_mask(config=encoder.config, inputs_embeds=hidden, attention_mask=valid)
    hidden = hidden + positional_in_fp32(encoder.pos_conv_embed, hidden)
    if not pre_ln:
        hidden = encoder.layer_norm(hidden)
    states = [encoder.dropout(hidden)]
    for layer in encoder.layers:
        output = layer(states[-1], attention_mask=mask)
        states.append(output[0] if isinstance(output, tuple) else output)
    if pre_ln:
        states[-1] = encoder.layer_norm(states[-1])
    return states


def positional_in_fp32(positional: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """The positional convolution computed in fp32, returned in ``hidden``'s dtype.

    In bf16, oneDNN's grouped convolution on CPUs with AMX loses about a quarter of the output's
    scale (kernel 128, 16 groups: max error 0.26 at mean |x| 0.17 on the tiny fixture), so the
    stored bf16 weights are upcast for this one layer."""
    if hidden.dtype == torch.float32:
        return positional(hidden)
    with torch.autocast(hidden.device.type, enabled=False):
        upcast = {name: value.float() for name, value in positional.named_parameters()}
        upcast.update({name: value.float() for name, value in positional.named_buffers() if value.is_floating_point()})
        return torch.func.functional_call(positional, upcast, (hidden.float(),)).to(hidden.dtype)
