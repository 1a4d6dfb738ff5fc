"""SlamModel, built from a spec: encoder → projector → splice → LLM.

Every check compares the model with a reference computed here from first principles: the
modality length from the convolution arithmetic, the token positions from the prompt
lengths, the loss and token accuracy from the logits at the target positions only.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import string

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from support.synthetic import TOY_SPEC

from slam_core.accounting import parameter_counts
from slam_core.model import ContractError, SlamModel, TextInputs, build_component, build_model
from slam_core.spec import validate_spec
from slam_core.splice import IGNORE_INDEX
from slam_core.toy import ToyEncoder

#: The component sections of the smallest test pipeline (toy encoder, linear projector, toy LLM, LoRA, asr).
SPEC = {section: TOY_SPEC[section] for section in ("encoder", "projector", "llm", "peft", "task")}
N_MELS, K = SPEC["encoder"]["shape"]["num_mel_bins"], SPEC["projector"]["k"]


def make_spec(peft: bool = True, **train):
    data = copy.deepcopy(SPEC)
    if not peft:
        del data["peft"]
    if train:
        data["train"] = train
    return validate_spec(data)


def fresh_model(peft: bool = True, **train) -> SlamModel:
    return build_model(make_spec(peft, **train))


@functools.lru_cache(maxsize=1)
def shared_model() -> SlamModel:
    """A model for read-only tests (no test mutates its weights or leaves gradients on it)."""
    return fresh_model()


def reference_modality_length(frames: int) -> int:
    """Two kernel-3 / stride-2 / padding-1 convolutions (floor((n + 2 - 3) / 2) + 1 each), then n // k."""
    for _ in range(2):
        frames = (frames + 2 - 3) // 2 + 1
    return frames // K


def features_for(lengths: list[int], width: int | None = None, seed: int = 0, garbage: float = 0.0):
    generator = torch.Generator().manual_seed(seed)
    width = width or max(lengths)
    features = torch.randn(len(lengths), width, N_MELS, generator=generator)
    for b, n in enumerate(lengths):
        features[b, n:] = garbage
    return features, torch.tensor(lengths)


def samples_for(targets: list[str]) -> list[dict]:
    return [{"key": f"utt{b}", "target": t} for b, t in enumerate(targets)]


@contextlib.contextmanager
def capture(model: SlamModel):
    """Record what the encoder and projector return and what the wrapped causal LM is called with."""
    seen = {"llm": [], "projector": [], "encoder": [], "grad_in_encoder": []}

    def llm_pre_hook(module, args, kwargs):
        seen["llm"].append(dict(kwargs))

    def projector_hook(module, args, output):
        seen["projector"].append(output)

    def encoder_hook(module, args, output):
        seen["encoder"].append(output)
        seen["grad_in_encoder"].append(torch.is_grad_enabled())

    handles = [
        model.llm.model.register_forward_pre_hook(llm_pre_hook, with_kwargs=True),
        model.projector.register_forward_hook(projector_hook),
        model.encoder.register_forward_hook(encoder_hook),
    ]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def full_logits(model: SlamModel, features, n, text: TextInputs) -> torch.Tensor:
    """The LLM's logits ``[B, L, V]`` at every position of the training layout (no position skipped)."""
    embeds, lengths = model.encode(features, n)
    inputs_embeds, grid = model.splice_inputs(embeds, lengths, text, "right")
    return model.llm(inputs_embeds, grid.attention_mask).logits


def reference_loss_and_accuracy(logits, starts, targets):
    """Mean next-token cross-entropy and accuracy over the target tokens only.

    Target token j of sample b sits at ``starts[b] + j`` and is predicted by the logits one
    position earlier.
    """
    losses, hits = [], []
    for b, target in enumerate(targets):
        for j, token in enumerate(target):
            row = logits[b, starts[b] + j - 1].double()
            losses.append(-torch.log_softmax(row, -1)[token])
            hits.append(int(row.argmax()) == token)
    return torch.stack(losses).mean(), sum(hits) / len(hits)


# ----------------------------------------------------------------------------- composition


def test_build_model_from_spec():
    model = shared_model()
    from slam_plugin_linear_projector.projector import LinearProjector
    from slam_plugin_lora.method import LoRA

    assert isinstance(model.encoder, ToyEncoder)
    assert isinstance(model.projector, LinearProjector)
    assert model.projector.input_dim == model.encoder.output_dim == 16
    assert model.projector.output_dim == model.llm.hidden_size == 32
    assert isinstance(model.peft, LoRA)
    assert hasattr(model.llm.model, "peft_config")
    counts = parameter_counts(model)
    assert counts["encoder"][1] == 0
    assert counts["projector"][0] == counts["projector"][1] > 0
    lora = sum(p.numel() for n, p in model.llm.named_parameters() if "lora_" in n)
    assert counts["llm"][1] == lora > 0


def test_modality_lengths_are_computed_from_the_contracts():
    lengths = torch.arange(0, 50)
    expected = [reference_modality_length(int(n)) for n in lengths]
    assert shared_model().modality_lengths(lengths).tolist() == expected


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=4),
    extra=st.integers(0, 6),
    targets=st.data(),
    seed=st.integers(0, 2**16),
)
def test_forward_places_every_embedding_and_scores_only_the_target(lengths, extra, targets, seed):
    model = shared_model().train()
    batch = len(lengths)
    words = [targets.draw(st.text(alphabet=string.ascii_letters + " ", max_size=8)) for _ in range(batch)]
    text = model.text_inputs(samples_for(words))
    features, n = features_for(lengths, max(lengths) + extra, seed, garbage=5.0)

    with torch.no_grad(), capture(model) as seen:
        out = model(features, n, text)
    (call,) = seen["llm"]
    ((embeds, proj_lengths),) = seen["projector"]
    inputs_embeds, attention_mask, labels = call["inputs_embeds"], call["attention_mask"], out.layout.labels
    # the output head runs only where a target token is predicted
    assert torch.equal(call["logits_to_keep"][:, :-1], labels[:, 1:] != IGNORE_INDEX)
    assert not call["logits_to_keep"][:, -1].any() and "labels" not in call
    width = inputs_embeds.shape[1]

    starts, eos = [], model.llm.eos_token_id
    for b in range(batch):
        prefix, suffix, target = text.prefix_ids[b], text.suffix_ids[b], text.target_ids[b]
        assert target[-1] == eos and model.llm.tokenizer.decode(target[:-1]) == words[b]
        p, m, s, t = len(prefix), reference_modality_length(lengths[b]), len(suffix), len(target)
        assert int(proj_lengths[b]) == m
        total = p + m + s + t
        # modality embeddings sit right after the prefix, in order, exactly as projected
        assert torch.equal(inputs_embeds[b, p : p + m], embeds[b, :m])
        # text embeddings everywhere else on the real positions
        ids = torch.tensor([prefix + suffix + target])
        text_embeds = model.llm.embed(ids)[0]
        assert torch.equal(inputs_embeds[b, :p], text_embeds[:p])
        assert torch.equal(inputs_embeds[b, p + m : total], text_embeds[p:])
        # right padding; labels only on the target
        assert attention_mask[b].tolist() == [1] * total + [0] * (width - total)
        assert labels[b].tolist() == [IGNORE_INDEX] * (p + m + s) + target + [IGNORE_INDEX] * (width - total)
        starts.append(p + m + s)

    with torch.no_grad():
        everywhere = full_logits(model, features, n, text)
    loss, accuracy = reference_loss_and_accuracy(everywhere, starts, text.target_ids)
    assert torch.isfinite(out.loss)
    torch.testing.assert_close(out.loss.double(), loss, atol=1e-5, rtol=1e-5)
    assert 0.0 <= float(out.token_accuracy) <= 1.0
    assert float(out.token_accuracy) == pytest.approx(accuracy, abs=1e-6)
    assert out.target_tokens == sum(map(len, text.target_ids))

    # other garbage in the feature padding changes nothing
    other, _ = features_for(lengths, max(lengths) + extra, seed, garbage=-123.0)
    with torch.no_grad():
        again = model(other, n, text)
    assert torch.equal(again.loss, out.loss)

    # batched == each sample alone (the batch loss is the token-weighted mean of the samples')
    weighted, row = 0.0, 0
    for b in range(batch):
        alone_text = TextInputs([text.prefix_ids[b]], [text.suffix_ids[b]], [text.target_ids[b]])
        with torch.no_grad():
            alone = model(features[b : b + 1, : lengths[b]], n[b : b + 1], alone_text)
            alone_everywhere = full_logits(model, features[b : b + 1, : lengths[b]], n[b : b + 1], alone_text)
        total = int(attention_mask[b].sum())
        assert alone_everywhere.shape[1] == total and alone.logits.shape[0] == alone.target_tokens
        torch.testing.assert_close(everywhere[b, :total], alone_everywhere[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out.logits[row : row + alone.target_tokens], alone.logits, atol=1e-5, rtol=1e-5)
        row += alone.target_tokens
        weighted += float(alone.loss) * alone.target_tokens
    assert float(out.loss) == pytest.approx(weighted / out.target_tokens, abs=1e-5)


def test_loss_ignores_padding_and_modality_placeholder_embeddings():
    """The pad token fills modality slots and padding: its embedding must never matter."""
    model = fresh_model().eval()
    features, n = features_for([30, 11, 19], seed=4, garbage=9.0)
    text = model.text_inputs(samples_for(["abc", "a much longer target", ""]))
    with torch.no_grad():
        before, before_everywhere = model(features, n, text), full_logits(model, features, n, text)
        model.llm.model.get_input_embeddings().weight[model.llm.pad_token_id] = 1e3
        after, after_everywhere = model(features, n, text), full_logits(model, features, n, text)
    assert torch.equal(before.loss, after.loss)
    torch.testing.assert_close(before.logits, after.logits, atol=0, rtol=0)
    real = before.layout.attention_mask.bool()
    torch.testing.assert_close(before_everywhere[real], after_everywhere[real], atol=0, rtol=0)


def test_forward_without_targets_has_no_loss():
    model = shared_model()
    features, n = features_for([20, 12], seed=5)
    with torch.no_grad():
        out = model(features, n, model.text_inputs(samples_for(["x", "y"]), with_targets=False))
    assert out.loss is None and out.token_accuracy is None and out.target_tokens == 0
    assert (out.layout.labels == IGNORE_INDEX).all()


def test_token_accuracy_counts_correct_greedy_predictions():
    """A target made of the model's own greedy continuation is predicted right token by token."""
    model = shared_model().eval()
    features, n = features_for([24, 16], seed=6)
    prompt = model.text_inputs(samples_for(["", ""]), with_targets=False)
    captured = []
    original = model.llm.generate

    def spy(*args, **kwargs):
        captured.append(original(*args, **kwargs))
        return captured[-1]

    alone = TextInputs(prompt.prefix_ids[:1], prompt.suffix_ids[:1], None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model.llm, "generate", spy)
        model.generate(features[:1], n[:1], alone, max_new_tokens=5, do_sample=False)
    greedy = captured[0][0].tolist()
    eos = model.llm.eos_token_id
    greedy = greedy[: greedy.index(eos)] if eos in greedy else greedy
    assert greedy, "the toy model stopped at once; pick another seed"
    wrong = [(greedy[0] + 1) % 250 + 3]  # a token the model does not predict first
    text = TextInputs(prompt.prefix_ids, prompt.suffix_ids, [[*greedy, eos], [*wrong, eos]])
    with torch.no_grad():
        out = model(features, n, text)
    starts = [
        len(prompt.prefix_ids[b]) + reference_modality_length(int(n[b])) + len(prompt.suffix_ids[b]) for b in range(2)
    ]
    with torch.no_grad():
        everywhere = full_logits(model, features, n, text)
    loss, accuracy = reference_loss_and_accuracy(everywhere, starts, text.target_ids)
    assert float(out.token_accuracy) == pytest.approx(accuracy, abs=1e-6)
    torch.testing.assert_close(out.loss.double(), loss, atol=1e-5, rtol=1e-5)
    for j, token in enumerate(greedy):  # sample 0's target rows come first
        assert int(out.logits[j].argmax()) == token == int(everywhere[0, starts[0] + j - 1].argmax())
    assert float(out.token_accuracy) >= len(greedy) / out.target_tokens
    assert float(out.token_accuracy) < 1.0


# ----------------------------------------------------------------------------- freezing


def test_encoder_and_llm_frozen_projector_and_lora_trainable_by_default():
    model = fresh_model()
    assert model.freeze_encoder and model.freeze_llm
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.projector.parameters())
    llm_params = dict(model.llm.named_parameters())
    assert any("lora_" in name for name in llm_params)
    for name, param in llm_params.items():
        assert param.requires_grad == ("lora_" in name), name

    model.train()
    assert model.training and model.projector.training and model.llm.training
    assert not any(module.training for module in model.encoder.modules())
    model.eval()
    model.train(True)
    assert not model.encoder.training

    features, n = features_for([33, 20], seed=7, garbage=2.0)
    with capture(model) as seen:
        out = model(features, n, model.text_inputs(samples_for(["ab", "cde"])))
    assert torch.is_grad_enabled()
    assert seen["grad_in_encoder"] == [False]  # the frozen encoder ran under no_grad
    hidden, _ = seen["encoder"][0]
    assert hidden.grad_fn is None and not hidden.requires_grad
    out.loss.backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, name
            assert torch.isfinite(param.grad).all(), name
        else:
            assert param.grad is None, name
    assert all(p.grad.abs().sum() > 0 for p in model.projector.parameters())
    lora_b = [p for name, p in model.llm.named_parameters() if "lora_B" in name]
    assert lora_b and all(p.grad.abs().sum() > 0 for p in lora_b)


def test_unfrozen_encoder_trains():
    model = fresh_model(freeze_encoder=False).train()
    assert all(p.requires_grad for p in model.encoder.parameters())
    assert model.encoder.training
    features, n = features_for([33, 20], seed=8)
    with capture(model) as seen:
        out = model(features, n, model.text_inputs(samples_for(["ab", "cde"])))
    assert seen["grad_in_encoder"] == [True]
    assert seen["encoder"][0][0].grad_fn is not None
    out.loss.backward()
    grads = {name: p.grad for name, p in model.encoder.named_parameters()}
    assert all(g is not None for g in grads.values())
    assert grads["conv1.weight"].abs().sum() > 0
    # the LLM base stays frozen
    assert all(p.grad is None for name, p in model.llm.named_parameters() if "lora_" not in name)


def test_unfrozen_llm_without_peft_trains():
    model = fresh_model(peft=False, freeze_llm=False).train()
    assert model.peft is None
    assert all(p.requires_grad for p in model.llm.parameters())
    features, n = features_for([20], seed=9)
    model(features, n, model.text_inputs(samples_for(["hi"]))).loss.backward()
    assert model.llm.model.lm_head.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.encoder.parameters())


def test_zero_length_sample_does_not_poison_gradients():
    """A sample without modality frames (length 0) in a batch must leave every gradient finite."""
    model = fresh_model().train()
    features, n = features_for([16, 16], seed=10)
    n = torch.tensor([16, 0])
    out = model(features, n, model.text_inputs(samples_for(["ab", "c"])))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    for name, param in model.named_parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), f"non-finite gradient in {name}"


# ----------------------------------------------------------------------------- contracts


@functools.lru_cache(maxsize=1)
def _parts():
    spec = make_spec(peft=False)
    return spec, build_component("encoder", spec.encoder), build_component("task", spec.task)


def assemble(projector_class, encoder=None) -> SlamModel:
    spec, default_encoder, task = _parts()
    encoder = encoder or default_encoder
    llm = build_component("llm", spec.llm)
    projector = projector_class(spec.projector, input_dim=encoder.output_dim, output_dim=llm.hidden_size)
    return SlamModel(encoder, projector, llm, task)


def _lying_projector_class():
    from slam_plugin_linear_projector.projector import LinearProjector

    class LyingProjector(LinearProjector):
        """Claims one position more than its forward produces."""

        def output_lengths(self, lengths):
            return torch.div(lengths, self.k, rounding_mode="floor") + 1

        def forward(self, hidden, lengths):
            honest = torch.div(lengths, self.k, rounding_mode="floor")
            positions = int(honest.max())
            stacked = hidden[:, : positions * self.k].reshape(hidden.shape[0], positions, -1)
            return self.linear2(self.activation(self.linear1(stacked))), honest

    class PaddedProjector(LinearProjector):
        """Returns the right lengths but one frame too many."""

        def forward(self, hidden, lengths):
            embeds, out_lengths = super().forward(hidden, lengths)
            return F.pad(embeds, (0, 0, 0, 1)), out_lengths

    return LinearProjector, LyingProjector, PaddedProjector


def test_projector_lying_about_output_lengths_is_a_contract_error():
    _, lying, _ = _lying_projector_class()
    model = assemble(lying)
    features, n = features_for([20, 9], seed=11)
    honest = [reference_modality_length(20), reference_modality_length(9)]
    claimed = [m + 1 for m in honest]
    message = (
        rf"^projector returned lengths \[{honest[0]}, {honest[1]}\] "
        rf"but its output_lengths\(\) says \[{claimed[0]}, {claimed[1]}\]"
    )
    with pytest.raises(ContractError, match=message):
        model(features, n, model.text_inputs(samples_for(["a", "b"])))


def test_projector_returning_extra_frames_is_a_contract_error():
    _, _, padded = _lying_projector_class()
    model = assemble(padded)
    features, n = features_for([20, 13], seed=12)
    with pytest.raises(ContractError, match=r"projector output has 3 frames, expected max length 2"):
        model(features, n, model.text_inputs(samples_for(["a", "b"])))


def test_encoder_lying_about_output_lengths_is_a_contract_error():
    honest, _, _ = _lying_projector_class()

    class LyingEncoder(ToyEncoder):
        def output_lengths(self, lengths):
            return super().output_lengths(lengths) - 1

    spec, _, _ = _parts()
    model = assemble(honest, encoder=LyingEncoder(spec.encoder))
    features, n = features_for([20, 13], seed=13)
    message = r"^encoder returned lengths \[5, 4\] but its output_lengths\(\) says \[4, 3\]"
    with pytest.raises(ContractError, match=message):
        model(features, n, model.text_inputs(samples_for(["a", "b"])))


def test_projector_width_must_match_the_llm():
    honest, _, _ = _lying_projector_class()
    spec, encoder, task = _parts()
    llm = build_component("llm", spec.llm)
    projector = honest(spec.projector, input_dim=encoder.output_dim, output_dim=llm.hidden_size + 8)
    with pytest.raises(ContractError, match="projector output_dim 40 != LLM hidden_size 32"):
        SlamModel(encoder, projector, llm, task)


# ----------------------------------------------------------------------------- generation


def _spy_generate(model, patch):
    calls = []
    original = model.llm.generate

    def spy(inputs_embeds, attention_mask, **options):
        tokens = original(inputs_embeds, attention_mask, **options)
        calls.append({"inputs_embeds": inputs_embeds, "attention_mask": attention_mask, "tokens": tokens})
        return tokens

    patch.setattr(model.llm, "generate", spy)
    return calls


def test_generate_left_pads_and_matches_each_sample_alone():
    model = shared_model().eval()
    lengths = [40, 9, 23]
    features, n = features_for(lengths, seed=14, garbage=4.0)
    text = model.text_inputs([{"key": f"u{b}"} for b in range(3)], with_targets=False)
    options = {"max_new_tokens": 4, "do_sample": False}
    with pytest.MonkeyPatch.context() as patch, capture(model) as seen:
        calls = _spy_generate(model, patch)
        texts = model.generate(features, n, text, **options)
        assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
        (call,) = calls
        mask, embeds = call["attention_mask"], call["inputs_embeds"]
        projected, _ = seen["projector"][0]
        width = mask.shape[1]
        for b in range(3):
            p, m, s = len(text.prefix_ids[b]), reference_modality_length(lengths[b]), len(text.suffix_ids[b])
            total = p + m + s
            assert mask[b].tolist() == [0] * (width - total) + [1] * total  # zeros on the left
            start = width - total + p
            assert torch.equal(embeds[b, start : start + m], projected[b, :m])
        assert (mask[:, 0] == 0).any()  # the batch really was padded

        for b in range(3):
            alone_text = TextInputs(text.prefix_ids[b : b + 1], text.suffix_ids[b : b + 1], None)
            alone = model.generate(features[b : b + 1, : lengths[b]], n[b : b + 1], alone_text, **options)
            assert alone == [texts[b]]
            alone_tokens = calls[-1]["tokens"][0]
            assert call["tokens"][b, : alone_tokens.shape[0]].tolist() == alone_tokens.tolist()


def test_generate_ignores_targets_padding_and_the_pad_embedding():
    model = fresh_model().eval()
    features, n = features_for([36, 10], seed=15, garbage=-2.0)
    samples = samples_for(["target one", "two"])
    options = {"max_new_tokens": 5, "do_sample": False}
    with pytest.MonkeyPatch.context() as patch:
        calls = _spy_generate(model, patch)
        first = model.generate(features, n, model.text_inputs(samples), **options)
        second = model.generate(features, n, model.text_inputs(samples, with_targets=False), **options)
        dirty, _ = features_for([36, 10], seed=15, garbage=77.0)
        with torch.no_grad():
            model.llm.model.get_input_embeddings().weight[model.llm.pad_token_id] = -500.0
        third = model.generate(dirty, n, model.text_inputs(samples, with_targets=False), **options)
    assert first == second == third
    assert torch.equal(calls[0]["tokens"], calls[2]["tokens"])
    assert calls[0]["inputs_embeds"].shape == calls[1]["inputs_embeds"].shape  # no target in the prompt


def test_generate_detokenises_the_new_tokens_without_special_tokens_or_post_processing():
    model = shared_model().eval()
    features, n = features_for([20], seed=16)
    text = model.text_inputs([{"key": "u"}], with_targets=False)
    with pytest.MonkeyPatch.context() as patch:
        eos = model.llm.eos_token_id
        decoded = torch.tensor([[*model.llm.tokenize("  hi   there "), eos]])
        patch.setattr(model.llm, "generate", lambda *args, **options: decoded)
        assert model.generate(features, n, text) == ["  hi   there "]  # the task post-processes (decode_batch)


# ----------------------------------------------------------------------------- LoRA adapters


def test_lora_adapter_round_trip(tmp_path):
    from slam_plugin_lora.method import LoRA
    from slam_plugin_lora.plugin import LoRAConfig

    trained = fresh_model().eval()
    generator = torch.Generator().manual_seed(17)
    with torch.no_grad():
        for name, param in trained.llm.named_parameters():
            if "lora_" in name:
                param.copy_(0.3 * torch.randn(param.shape, generator=generator))
    features, n = features_for([28, 15], seed=18)
    text = trained.text_inputs(samples_for(["hello", "world!"]))
    with torch.no_grad():
        expected = trained(features, n, text)

    adapter = tmp_path / "adapter"
    trained.peft.save(trained.llm.model, adapter)
    assert (adapter / "adapter_config.json").is_file()
    assert (adapter / "adapter_model.safetensors").is_file()
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["lora_alpha"] == 8
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}

    restored = fresh_model(peft=False).eval()
    restored.projector.load_state_dict(trained.projector.state_dict())
    with torch.no_grad():
        before = restored(features, n, text)
    assert not torch.allclose(before.logits, expected.logits, atol=1e-4)  # the adapter matters

    restored.llm.model = LoRA(LoRAConfig(r=4, alpha=8, dropout=0.0)).load(restored.llm.model, adapter)
    restored.eval()
    with torch.no_grad():
        after = restored(features, n, text)
    torch.testing.assert_close(after.logits, expected.logits, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(after.loss, expected.loss, atol=1e-6, rtol=1e-6)
    for name, param in restored.llm.named_parameters():
        assert param.requires_grad == ("lora_" in name), name


def test_lora_save_and_load_errors(tmp_path):
    from slam_plugin_lora.method import LoRA
    from slam_plugin_lora.plugin import LoRAConfig

    lora = LoRA(LoRAConfig())
    plain = fresh_model(peft=False)
    with pytest.raises(TypeError, match="no LoRA adapter to save: call apply"):
        lora.save(plain.llm.model, tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="not a peft adapter folder"):
        lora.load(plain.llm.model, tmp_path)
    with pytest.raises(ValueError, match=r"match no layer of LlamaForCausalLM.*q_proj"):
        LoRA(LoRAConfig(target_modules=["query"])).apply(plain.llm.model)


# ----------------------------------------------------------------------------- logits at target positions only


def full_logit_loss(model: SlamModel, features, n, text: TextInputs) -> torch.Tensor:
    """The loss as computed before: transformers' shifted cross-entropy over full-vocabulary logits everywhere."""
    embeds, lengths = model.encode(features, n)
    inputs_embeds, grid = model.splice_inputs(embeds, lengths, text, "right")
    return model.llm(inputs_embeds, grid.attention_mask, grid.labels).loss


def _loss_and_gradients(model: SlamModel, loss_of) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = loss_of()
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}
    model.zero_grad(set_to_none=True)
    return loss.detach(), grads


@pytest.mark.parametrize("mask_path", [True, False], ids=["logits_to_keep", "default-full-forward"])
def test_target_only_loss_and_gradients_equal_the_full_logit_loss(mask_path, monkeypatch):
    """Loss and every trainable gradient (projector, LoRA) equal the full-logit cross-entropy's."""
    import slam_core.hf_llm

    if not mask_path:  # an LLM whose model takes no logits_to_keep: the contract's default path
        monkeypatch.setattr(slam_core.hf_llm, "takes_logits_mask", lambda model: False)
    model = fresh_model().train()
    features, n = features_for([37, 12, 25], seed=21)
    text = model.text_inputs(samples_for(["hello there", "a", "target three"]))
    ours, our_grads = _loss_and_gradients(model, lambda: model(features, n, text).loss)
    reference, reference_grads = _loss_and_gradients(model, lambda: full_logit_loss(model, features, n, text))
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=1e-6)
    assert our_grads.keys() == reference_grads.keys() and any("lora_" in name for name in our_grads)
    assert all(grad.abs().sum() > 0 for name, grad in our_grads.items() if "lora_A" not in name)  # B starts at 0
    for name, grad in our_grads.items():
        torch.testing.assert_close(grad, reference_grads[name], atol=1e-6, rtol=1e-5, msg=name)


def test_sequence_log_likelihood_is_the_full_logit_sum_of_target_log_probs():
    model = shared_model().eval()
    features, n = features_for([30, 14, 22], seed=22)
    text = model.text_inputs(samples_for(["rock", "classical music", "jazz"]))
    with torch.no_grad():
        embeds, lengths = model.encode(features, n)
        scores = model.sequence_log_likelihood(embeds, lengths, text)
        everywhere = full_logits(model, features, n, text).double()
    labels = model.splice_inputs(embeds, lengths, text, "right")[1].labels
    for b in range(3):
        positions = (labels[b] != IGNORE_INDEX).nonzero()[:, 0]
        expected = sum(torch.log_softmax(everywhere[b, int(t) - 1], -1)[labels[b, t]] for t in positions)
        assert float(scores[b]) == pytest.approx(float(expected), abs=1e-4)


def test_until_end_of_sequence_keeps_the_first_stop_and_drops_padding():
    from slam_core.model import until_end_of_sequence

    tokens = torch.tensor([[5, 2, 0, 0], [5, 6, 7, 8], [2, 2, 2, 2], [9, 4, 7, 2]])
    assert until_end_of_sequence(tokens, [2]) == [[5, 2], [5, 6, 7, 8], [2], [9, 4, 7, 2]]
    assert until_end_of_sequence(tokens, [4, 2]) == [[5, 2], [5, 6, 7, 8], [2], [9, 4]]


def test_generate_returns_the_new_token_ids_behind_its_text():
    model = shared_model().eval()
    features, n = features_for([40, 9, 23], seed=15)
    text = model.text_inputs([{"key": f"u{b}"} for b in range(3)], with_targets=False)
    options = {"max_new_tokens": 6, "do_sample": False}
    with pytest.MonkeyPatch.context() as patch:
        calls = _spy_generate(model, patch)
        ids = model.generate(features, n, text, return_tokens=True, **options)
    texts = model.generate(features, n, text, **options)
    raw = calls[0]["tokens"].tolist()
    eos = model.llm.eos_token_id
    for b in range(3):
        assert ids[b] == raw[b][: len(ids[b])] and eos not in ids[b][:-1]
        assert ids[b][-1] == eos or len(ids[b]) == len(raw[b]) == 6
        assert model.llm.tokenizer.decode(ids[b], skip_special_tokens=True) == texts[b]


def test_merging_the_adapter_for_decoding_keeps_the_decoded_tokens():
    torch.manual_seed(0)
    model = build_model(validate_spec(copy.deepcopy(TOY_SPEC))).eval()
    with torch.no_grad():
        for name, param in model.llm.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)  # a trained adapter: LoRA's B starts at zero
    features, lengths = torch.randn(3, 40, 8), torch.tensor([40, 31, 22])
    prompts = model.text_inputs([{"target": "x"}] * 3, with_targets=False)

    def decode():
        options = {"max_new_tokens": 8, "do_sample": False, "return_tokens": True}
        return [model.generate(features, lengths, prompts, num_beams=beams, **options) for beams in (1, 3)]

    adapted = decode()
    with model.llm.model.disable_adapter():
        assert decode() != adapted  # the adapter changes what is decoded
    model.merge_adapter()
    assert model.peft is None and model.adapter_parameters() == []
    assert not any("lora_" in name for name, _ in model.llm.named_parameters())
    assert decode() == adapted
    model.merge_adapter()  # no adapter left: nothing to do
    assert model.peft is None


def test_a_bf16_encoder_feeds_an_fp32_projector_outside_autocast():
    spec = copy.deepcopy(TOY_SPEC)
    spec["encoder"]["dtype"] = "bf16"
    model = build_model(validate_spec(spec)).eval()
    assert next(model.encoder.parameters()).dtype == torch.bfloat16
    assert next(model.projector.parameters()).dtype == torch.float32
    embeds, lengths = model.encode(torch.randn(2, 40, 8), torch.tensor([40, 25]))
    assert embeds.dtype == torch.float32
    assert lengths.tolist() == model.modality_lengths(torch.tensor([40, 25])).tolist()
