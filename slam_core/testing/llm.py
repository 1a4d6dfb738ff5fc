"""The rules of LLM components: embeddings, teacher-forced loss, tokenizer, template, generation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from slam_core.components import LLM, PromptParts
from slam_core.testing.modules import ModuleConformance, assert_same
from slam_core.testing.rules import checks, require

#: New tokens the generation rule asks for.
NEW_TOKENS = 3


class LLMConformance(ModuleConformance):
    """LLM contract: embeddings, teacher-forced loss, generation, tokenizer and template."""

    kind = "llm"
    contract = LLM
    texts: ClassVar[Sequence[str]] = ("hello world", "a slightly longer sentence here")

    def example_inputs(self, module: Any, dtype: torch.dtype = torch.float32) -> Any:
        """Right-padded ids of :attr:`texts` and their attention mask."""
        ids = [module.tokenize(text) for text in self.texts]
        width = max(len(i) for i in ids)
        input_ids = torch.full((len(ids), width), module.pad_token_id)
        mask = torch.zeros(len(ids), width, dtype=torch.long)
        for row, sequence in enumerate(ids):
            input_ids[row, : len(sequence)] = torch.tensor(sequence)
            mask[row, : len(sequence)] = 1
        return input_ids, mask

    def run(self, module: Any, inputs: Any) -> torch.Tensor:
        input_ids, mask = inputs
        return module(module.embed(input_ids), mask).logits

    @checks("embed-shape")
    def test_embed_shape(self):
        llm = self.build()
        input_ids, _ = self.example_inputs(llm)
        shape = tuple(llm.embed(input_ids).shape)
        wanted = (*input_ids.shape, llm.hidden_size)
        require(shape == wanted, "embed-shape", f"embed(ids {tuple(input_ids.shape)}) is {shape}, expected {wanted}")

    @checks("loss-is-shifted-cross-entropy")
    def test_loss_is_shifted_cross_entropy(self):
        llm = self.build().eval()
        input_ids, mask = self.example_inputs(llm)
        labels = input_ids.masked_fill(mask == 0, -100)
        with torch.no_grad():
            output = llm(llm.embed(input_ids), mask, labels)
        logits = output.logits[:, :-1].float()
        reference = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))
        require(output.loss is not None, "loss-is-shifted-cross-entropy", "forward with labels returned no loss")
        what = f"the loss {float(output.loss):.6f} vs the shifted cross-entropy {float(reference):.6f}"
        assert_same("loss-is-shifted-cross-entropy", output.loss.float(), reference, what, 1e-4, 1e-4)

    @checks("tokenizer-round-trip")
    def test_tokenizer_round_trip(self):
        llm = self.build()
        rule = "tokenizer-round-trip"
        ids_of = {"eos_token_id": llm.eos_token_id, "pad_token_id": llm.pad_token_id}
        require(all(isinstance(i, int) for i in ids_of.values()), rule, f"special ids are not ints: {ids_of}")
        ids = llm.tokenize(self.texts[0])
        require(ids and all(isinstance(i, int) for i in ids), rule, f"tokenize({self.texts[0]!r}) gave {ids!r}")
        decoded = llm.tokenizer.decode(ids).strip()
        require(decoded == self.texts[0], rule, f"{self.texts[0]!r} -> {ids} -> {decoded!r}")

    @checks("prompt-keeps-instruction")
    def test_prompt_keeps_instruction(self):
        parts = self.build().prompt_parts("Transcribe this.")
        require(isinstance(parts, PromptParts), "prompt-keeps-instruction", f"returned a {type(parts).__name__}")
        require(
            "Transcribe this." in parts.prefix + parts.suffix,
            "prompt-keeps-instruction",
            f"'Transcribe this.' is in neither {parts.prefix!r} nor {parts.suffix!r}",
        )

    @checks("generate-returns-new-tokens")
    def test_generate_returns_new_tokens(self):
        llm = self.build().eval()
        input_ids, mask = self.example_inputs(llm)
        order = torch.sort(mask, dim=1, stable=True).indices  # generate() takes left padding
        left_ids, left_mask = input_ids.gather(1, order), mask.gather(1, order)
        rule = "generate-returns-new-tokens"
        with torch.no_grad():
            tokens = llm.generate(llm.embed(left_ids), left_mask, max_new_tokens=NEW_TOKENS, do_sample=False)
        require(tokens.dtype == torch.long, rule, f"generate returned {tokens.dtype}, expected torch.long")
        require(
            tokens.ndim == 2 and tokens.shape[0] == len(self.texts) and tokens.shape[1] <= NEW_TOKENS,
            rule,
            f"generate(max_new_tokens={NEW_TOKENS}) returned shape {tuple(tokens.shape)} for {len(self.texts)} "
            f"prompts (only the new tokens: at most [{len(self.texts)}, {NEW_TOKENS}])",
        )
        for row in range(len(self.texts)):
            expected = self.greedy(llm, input_ids[row, : int(mask[row].sum())])
            got = tokens[row].tolist()[: len(expected)]
            require(
                got == expected,
                rule,
                f"prompt {row} ({self.texts[row]!r}): generate gave {tokens[row].tolist()} in the left-padded "
                f"batch, greedy decoding through forward() of the prompt alone gives {expected}",
            )

    def greedy(self, llm: Any, ids: torch.Tensor) -> list[int]:
        """Greedy continuation of one unpadded prompt through ``forward`` (stops after EOS)."""
        embeds, tokens = llm.embed(ids[None]), []
        with torch.no_grad():
            for _ in range(NEW_TOKENS):
                mask = torch.ones(embeds.shape[:2], dtype=torch.long)
                token = int(llm(embeds, mask).logits[0, -1].argmax())
                tokens.append(token)
                if token == llm.eos_token_id:
                    break
                embeds = torch.cat([embeds, llm.embed(torch.tensor([[token]]))], dim=1)
        return tokens
