"""build_component: a factory must return its kind's contract class; its failures name the distribution.

The factories are a fake installed distribution (``fakedist.py``), discovered as a pip-installed one.
"""

from __future__ import annotations

import pytest
from fakedist import PREAMBLE, config_source

from slam_core import plugins
from slam_core.components import CONTRACTS
from slam_core.errors import CheckpointError, ContractError, PluginError
from slam_core.factories import build_component

DIST, VERSION = "fake-factories", "0.2.0"
KINDS = ("encoder", "projector", "llm", "peft", "task")
HOOKS = {"encoder": "slam_encoders", "projector": "slam_projectors", "llm": "slam_llms"}
HOOKS |= {"peft": "slam_peft_methods", "task": "slam_task_heads"}

FACTORIES = """
from slam_core.errors import CheckpointError
from slam_core.toy import ToyEncoder


class NotAComponent:
    pass


def wrong(config, **context):
    return NotAComponent()


def nothing(config, **context):
    return None


def another_contract(config, **context):
    from slam_core.runtime.tasks.asr import ASRTask
    from slam_core.runtime.tasks.configs import ASRTaskConfig

    return ASRTask(ASRTaskConfig())


def broken(config, **context):
    raise ValueError("hidden size 3 is not divisible by 2 heads")


def truncated(config, **context):
    raise CheckpointError("/data/encoder.pt: truncated; download it again")


SEEN = []


def toy(config, **context):
    from slam_core.builtin import ToyEncoderConfig

    SEEN.append(context)
    return ToyEncoder(ToyEncoderConfig(shape={"num_mel_bins": 8, "hidden_size": 16, "num_layers": 1, "num_heads": 2}))
"""

#: (kind, component name, factory attribute in the module fake_factory_impl)
COMPONENTS = [(kind, f"wrong-{kind}", "wrong") for kind in KINDS] + [
    ("encoder", "none-encoder", "nothing"),
    ("encoder", "task-encoder", "another_contract"),
    ("encoder", "broken-encoder", "broken"),
    ("encoder", "truncated-encoder", "truncated"),
    ("encoder", "good-encoder", "toy"),
    ("projector", "missing-projector", "no_such_attribute"),
]


def plugin_source() -> str:
    source = PREAMBLE
    for index, (_, name, _) in enumerate(COMPONENTS):
        source += config_source(name, class_name=f"Config{index}")
    for kind in KINDS:
        records = [
            f"ComponentSpec({name!r}, Config{index}, 'fake_factory_impl:{attr}', api=API_VERSION)"
            for index, (k, name, attr) in enumerate(COMPONENTS)
            if k == kind
        ]
        source += f"\n\n@hookimpl\ndef {HOOKS[kind]}():\n    return [{', '.join(records)}]\n"
    return source


@pytest.fixture
def registry(fake_site):
    fake_site.write_module("fake_factory_impl", FACTORIES)
    fake_site.add_plugin(DIST, plugin_source(), version=VERSION)
    return plugins.registry()


def build(registry, kind: str, name: str, **context):
    config = registry.get(kind, name).spec.config()
    if kind == "projector" and not context:
        context = {"input_dim": 4, "output_dim": 8}
    return build_component(kind, config, registry, **context)


def where(kind: str, name: str) -> str:
    return f"{kind} '{name}' from {DIST} {VERSION} (entry point '{DIST}')"


@pytest.mark.parametrize("kind", KINDS)
def test_a_factory_returning_no_component_of_its_kind_is_a_contract_error(registry, kind):
    contract = CONTRACTS[kind].__name__
    message = (
        f"{where(kind, f'wrong-{kind}')}: its factory 'fake_factory_impl:wrong' returned a "
        f"fake_factory_impl.NotAComponent, not a slam_core.components.{contract}"
    )
    with pytest.raises(ContractError) as caught:
        build(registry, kind, f"wrong-{kind}")
    assert str(caught.value) == message and isinstance(caught.value, PluginError)


def test_none_or_another_contracts_component_is_refused(registry):
    with pytest.raises(ContractError, match=r"returned None, not a slam_core\.components\.Encoder$"):
        build(registry, "encoder", "none-encoder")
    with pytest.raises(ContractError, match=r"returned a slam_core\.runtime\.tasks\.asr\.ASRTask, not a .*\.Encoder"):
        build(registry, "encoder", "task-encoder")


@pytest.mark.parametrize(
    ("kind", "name", "problem", "cause"),
    [
        (
            "encoder",
            "broken-encoder",
            "its factory 'fake_factory_impl:broken' failed: ValueError: hidden size 3 is not divisible by 2 heads",
            ValueError,
        ),
        (
            "projector",
            "missing-projector",
            "cannot import its factory 'fake_factory_impl:no_such_attribute': "
            "module 'fake_factory_impl' has no attribute 'no_such_attribute'",
            AttributeError,
        ),
    ],
)
def test_a_failing_or_missing_factory_is_a_plugin_error_naming_the_distribution(registry, kind, name, problem, cause):
    with pytest.raises(PluginError) as caught:
        build(registry, kind, name)
    assert str(caught.value) == f"{where(kind, name)}: {problem}"
    assert isinstance(caught.value.__cause__, cause)


def test_a_slam_error_of_the_factory_passes_unchanged(registry):
    with pytest.raises(CheckpointError) as caught:
        build(registry, "encoder", "truncated-encoder")
    assert str(caught.value) == "/data/encoder.pt: truncated; download it again"


def test_a_good_factory_gets_its_context_and_its_component_is_returned(registry):
    import fake_factory_impl

    from slam_core.toy import ToyEncoder

    assert isinstance(build(registry, "encoder", "good-encoder"), ToyEncoder)
    assert fake_factory_impl.SEEN == [{}]
