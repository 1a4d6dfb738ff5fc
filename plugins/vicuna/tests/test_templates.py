"""vicuna: prompt templates, checked against the formats they reproduce."""

from __future__ import annotations

import pytest
from slam_plugin_vicuna import templates
from slam_plugin_vicuna.llm import VicunaLLM
from slam_plugin_vicuna.plugin import VicunaConfig
from vicuna_testkit import tiny_model, tiny_tokenizer

INSTRUCTION = "Transcribe speech to text."
POSITIONS = ("before_instruction", "after_instruction")


def llm(tokenizer=None, **fields) -> VicunaLLM:
    return VicunaLLM(tiny_model(), tokenizer or tiny_tokenizer(), VicunaConfig(**fields))


def fastchat_vicuna_v1_1(system: str, message: str) -> str:
    """FastChat's ADD_COLON_TWO rendering of one user turn and an open assistant turn (sep=' ')."""
    return system + " " + "USER" + ": " + message + " " + "ASSISTANT" + ":"


@pytest.mark.parametrize("position", POSITIONS)
def test_vicuna_v1_1_is_fastchat_around_the_modality(position):
    parts = llm(modality_position=position).prompt_parts(INSTRUCTION)
    assert parts.prefix.startswith("<s>")  # the Llama tokenizer adds BOS by itself, so the template does too
    assert parts.prefix + parts.suffix == "<s>" + fastchat_vicuna_v1_1(templates.VICUNA_SYSTEM, INSTRUCTION)
    assert not parts.prefix.endswith(" ")  # the separating space goes after the modality, not before it
    assert (INSTRUCTION in parts.suffix) is (position == "before_instruction")


def test_vicuna_v1_1_rendered_example():
    parts = llm(system_prompt="").prompt_parts(INSTRUCTION)
    assert (parts.prefix, parts.suffix) == ("<s>USER:", " Transcribe speech to text. ASSISTANT:")
    parts = llm(system_prompt="Be brief.", modality_position="after_instruction").prompt_parts(INSTRUCTION)
    assert (parts.prefix, parts.suffix) == ("<s>Be brief. USER: Transcribe speech to text.", " ASSISTANT:")


def test_the_fastchat_system_line():
    assert templates.VICUNA_SYSTEM == (
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions."
    )


def test_no_bos_when_the_tokenizer_adds_none():
    tokenizer = tiny_tokenizer()
    tokenizer.add_bos_token = False
    assert not templates.adds_bos(tokenizer)
    assert llm(tokenizer, system_prompt="").prompt_parts(INSTRUCTION).prefix == "USER:"


def test_prefix_tokens_start_with_bos():
    model = llm()
    prefix = model.prompt_parts(INSTRUCTION).prefix
    assert model.tokenize(prefix, special=True) == model.tokenizer(prefix.removeprefix("<s>"))["input_ids"]
    assert model.tokenize(prefix, special=True)[0] == model.tokenizer.bos_token_id


def test_data_text_is_plain_text():
    """Targets are tokenized with special=False: "<s>" in a transcript is text, and no BOS is split off."""
    model = llm()
    ids = model.tokenize("<s>hello")
    assert model.tokenizer.bos_token_id not in ids
    assert model.tokenizer.decode(ids) == "<s>hello"


@pytest.mark.parametrize("position", POSITIONS)
def test_chat_is_the_tokenizers_template_split_at_the_modality(position):
    model = llm(template="chat", modality_position=position)
    parts = model.prompt_parts(INSTRUCTION)
    reference = model.tokenizer.apply_chat_template(
        [{"role": "user", "content": INSTRUCTION}], tokenize=False, add_generation_prompt=True
    )
    assert parts.prefix + parts.suffix == reference
    assert parts.suffix.endswith("<|assistant|>\n")  # the generation prompt
    assert (parts.prefix.endswith("<|user|>\n")) is (position == "before_instruction")


def test_chat_with_a_system_prompt():
    parts = llm(template="chat", system_prompt="Be brief.").prompt_parts(INSTRUCTION)
    assert parts.prefix == "<|system|>\nBe brief.</s>\n<|user|>\n"


def test_chat_needs_a_chat_template():
    with pytest.raises(ValueError, match="template 'chat' needs a tokenizer with a chat template"):
        llm(tiny_tokenizer(chat_template=None), template="chat").prompt_parts(INSTRUCTION)


def test_chat_without_a_chat_template_is_refused_before_weights_are_read(tmp_path):
    from slam_plugin_vicuna.llm import build_vicuna
    from vicuna_testkit import save_checkpoint

    directory = save_checkpoint(tmp_path / "m", tokenizer=tiny_tokenizer(chat_template=None))
    (directory / "model.safetensors").write_bytes(b"never read")
    with pytest.raises(ValueError, match="template 'chat' needs a tokenizer with a chat template"):
        build_vicuna(VicunaConfig(path=str(directory), template="chat"))


def test_chat_template_that_drops_the_message_is_refused():
    tokenizer = tiny_tokenizer(chat_template="{{ 'no messages here' }}")
    with pytest.raises(ValueError, match="does not render the user message verbatim exactly once"):
        llm(tokenizer, template="chat").prompt_parts(INSTRUCTION)


@pytest.mark.parametrize(
    ("position", "system", "expected"),
    [
        ("before_instruction", None, ("<s>", INSTRUCTION)),
        ("after_instruction", None, ("<s>" + INSTRUCTION, "")),
        ("before_instruction", "Listen.", ("<s>Listen.", " " + INSTRUCTION)),
        ("after_instruction", "Listen.", ("<s>Listen. " + INSTRUCTION, "")),
    ],
)
def test_plain(position, system, expected):
    parts = llm(template="plain", modality_position=position, system_prompt=system).prompt_parts(INSTRUCTION)
    assert (parts.prefix, parts.suffix) == expected


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("template", ["vicuna_v1_1", "plain"])
def test_prefix_and_suffix_tokens_are_the_whole_prompts_tokens(template, position):
    """SlamModel tokenizes prefix and suffix apart; without a modality they give the tokens of the whole
    prompt as the tokenizer encodes it (with its BOS): FastChat's tokens for vicuna_v1_1."""
    model = llm(template=template, modality_position=position)
    parts = model.prompt_parts(INSTRUCTION)
    whole = parts.prefix.removeprefix("<s>") + parts.suffix
    if template == "vicuna_v1_1":
        assert whole == fastchat_vicuna_v1_1(templates.VICUNA_SYSTEM, INSTRUCTION)
    assert (
        model.tokenize(parts.prefix, special=True) + model.tokenize(parts.suffix, special=True)
        == model.tokenizer(whole)["input_ids"]
    )


def training_tokens(model: VicunaLLM, answer: str) -> list[int]:
    """Prefix, suffix and target tokenised apart, as SlamModel.text_inputs does (no modality)."""
    parts = model.prompt_parts(INSTRUCTION)
    return (
        model.tokenize(parts.prefix, special=True)
        + model.tokenize(parts.suffix, special=True)
        + model.tokenize(parts.target_prefix + answer)
    )


def test_vicuna_v1_1_target_tokens_are_those_of_the_whole_conversation():
    """The target gets the tokens it has inside FastChat's ``... ASSISTANT: answer`` (SentencePiece)."""
    model = llm(template="vicuna_v1_1", modality_position="after_instruction")
    whole = fastchat_vicuna_v1_1(templates.VICUNA_SYSTEM, INSTRUCTION) + " hello world"
    assert training_tokens(model, "hello world") == model.tokenizer(whole)["input_ids"]


def test_slam_llm_is_slam_llms_speech_dataset_layout():
    """SLAM-LLM's SpeechDatasetJsonl: [audio] + tokenizer.encode("USER: {prompt}\\n ASSISTANT:"), BOS after audio."""
    model = llm(template="slam_llm")
    parts = model.prompt_parts("Transcribe speech to text. ")
    assert (parts.prefix, parts.suffix, parts.target_prefix) == (
        "",
        "<s>USER: Transcribe speech to text. \n ASSISTANT:",
        "",
    )
    slam_llm_ids = model.tokenizer.encode("USER: Transcribe speech to text. \n ASSISTANT:")
    assert model.tokenize(parts.suffix, special=True) == slam_llm_ids
    after = llm(template="slam_llm", modality_position="after_instruction").prompt_parts(INSTRUCTION)
    assert (after.prefix, after.suffix) == ("<s>USER: " + INSTRUCTION, "\n ASSISTANT:")
    with pytest.raises(ValueError, match="template 'slam_llm' has no system line"):
        llm(template="slam_llm", system_prompt="Be brief.").prompt_parts(INSTRUCTION)
