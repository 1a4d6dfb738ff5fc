"""Prompt templates: the text before and after the modality embeddings.

``vicuna_v1_1`` follows FastChat's ``vicuna_v1.1`` conversation (system line, then
``USER: ... ASSISTANT:``), ``chat`` renders the tokenizer's own chat template, ``plain`` is the
instruction alone, ``slam_llm`` is the layout of SLAM-LLM's speech recipes (its checkpoints decode
the same text under it). White space that separates a piece of text from the modality embeddings is
put at the start of the text after them, never at the end of the text before them, so that no
piece ends in a lone space token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slam_core.components import PromptParts

#: FastChat's ``vicuna_v1.1`` system message.
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)

#: Stands for the modality embeddings inside a rendered chat template; split out again.
MODALITY_MARKER = "<<slam:modality:7f3a>>"


def _join(*pieces: str) -> str:
    return " ".join(piece for piece in pieces if piece)


def vicuna_v1_1(instruction: str, before: bool, system: str | None, bos: str, tokenizer: Any) -> PromptParts:
    """``{bos}{system} USER:«modality» {instruction} ASSISTANT:`` (or the instruction before the modality)."""
    head = bos + _join(VICUNA_SYSTEM if system is None else system, "USER:")
    space = answer_space(tokenizer)
    if before:
        return PromptParts(prefix=head, suffix=" " + _join(instruction, "ASSISTANT:"), target_prefix=space)
    return PromptParts(prefix=_join(head, instruction), suffix=" ASSISTANT:", target_prefix=space)


def answer_space(tokenizer: Any, probe: str = "hello") -> str:
    """What to put before the answer so that, tokenised alone, it gets the tokens it has in
    ``"ASSISTANT: answer"``: ``" "`` for byte-level BPE (SmolLM2, Llama 3), ``""`` for SentencePiece."""
    whole = tokenizer("ASSISTANT: " + probe, add_special_tokens=False)["input_ids"]
    for candidate in ("", " "):
        alone = tokenizer(candidate + probe, add_special_tokens=False)["input_ids"]
        if alone and whole[-len(alone) :] == alone:
            return candidate
    return ""


def plain(instruction: str, before: bool, system: str | None, bos: str, tokenizer: Any) -> PromptParts:
    """``{bos}«modality»{instruction}`` (or ``{bos}{instruction}«modality»``); a system prompt, if set, leads."""
    head = bos + (system or "")
    lead = " " if system and instruction else ""
    if before:
        return PromptParts(prefix=head, suffix=lead + instruction)
    return PromptParts(prefix=head + lead + instruction, suffix="")


def slam_llm(instruction: str, before: bool, system: str | None, bos: str, tokenizer: Any) -> PromptParts:
    """SLAM-LLM's speech datasets: ``«modality»{bos}USER: {instruction}\n ASSISTANT:{target}``.

    The modality comes first and the BOS token after it (SLAM-LLM tokenises the prompt on its own,
    so the tokenizer's BOS lands there); the target follows ``ASSISTANT:`` directly. With
    ``after_instruction`` the modality moves to the end of the user turn. No system line.
    """
    if system:
        raise ValueError("template 'slam_llm' has no system line; unset system_prompt or use template: vicuna_v1_1")
    if before:
        return PromptParts(prefix="", suffix=f"{bos}USER: {instruction}\n ASSISTANT:")
    return PromptParts(prefix=f"{bos}USER: {instruction}", suffix="\n ASSISTANT:")


def chat(instruction: str, before: bool, system: str | None, bos: str, tokenizer: Any) -> PromptParts:
    """The tokenizer's chat template with one user turn and the generation prompt, split at the modality."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"template 'chat' needs a tokenizer with a chat template, and {type(tokenizer).__name__} has none; "
            "use template: vicuna_v1_1 or plain"
        )
    content = MODALITY_MARKER + instruction if before else instruction + MODALITY_MARKER
    messages = [{"role": "user", "content": content}]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if rendered.count(MODALITY_MARKER) != 1:
        raise ValueError(
            "the tokenizer's chat template does not render the user message verbatim exactly once, "
            "so the modality position cannot be found; use template: vicuna_v1_1 or plain"
        )
    prefix, suffix = rendered.split(MODALITY_MARKER)
    return PromptParts(prefix=prefix, suffix=suffix)


TEMPLATES: dict[str, Callable[..., PromptParts]] = {
    "vicuna_v1_1": vicuna_v1_1,
    "chat": chat,
    "plain": plain,
    "slam_llm": slam_llm,
}


def prompt_parts(
    template: str, instruction: str, *, modality_position: str, system_prompt: str | None, tokenizer: Any
) -> PromptParts:
    """Render ``template`` around ``instruction``; ``modality_position`` places the modality embeddings."""
    bos = tokenizer.bos_token if adds_bos(tokenizer) else ""
    render = TEMPLATES[template]
    return render(instruction, modality_position == "before_instruction", system_prompt, bos, tokenizer)


def adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer puts its BOS token before a text by itself (Llama 1/2 do, SmolLM2 does not)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    ids = tokenizer("a")["input_ids"]
    return bool(ids) and ids[0] == bos
