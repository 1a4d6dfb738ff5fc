"""The kit's test classes over the planted components: ``Test<Rule>`` fails that rule, ``TestGood*`` pass.

Each planted class is named after the rule it breaks (``config-round-trip`` → ``TestConfigRoundTrip``).
"""

from __future__ import annotations

import planted_components as c
from planted_plugins import ConvEncoderConfig, StackConfig

from slam_core.builtin import ToyLLMConfig
from slam_core.runtime.tasks.configs import ASRTaskConfig
from slam_core.testing import (
    EncoderConformance,
    LLMConformance,
    PEFTConformance,
    ProjectorConformance,
    TaskHeadConformance,
)

TINY_LLM = {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 48}


class _Projector(ProjectorConformance):
    factory, config_model = c.GoodProjector, StackConfig


class _Encoder(EncoderConformance):
    factory, config_model = c.ConvEncoder, ConvEncoderConfig
    raw_sizes = (4000, 2400, 1601)


class _LLM(LLMConformance):
    factory, config_model, config = c.GoodLLM, ToyLLMConfig, {"shape": TINY_LLM}


class _LoRA(PEFTConformance):
    component_name = "lora"
    config = {"r": 2, "alpha": 4, "dropout": 0.0}


class _Task(TaskHeadConformance):
    factory, config_model = c.ASRTask, ASRTaskConfig


# -- correct components pass every rule -----------------------------------------------------------


class TestGoodProjector(_Projector):
    pass


class TestGoodInstalledProjector(ProjectorConformance):
    component_name = "fake-good-proj"  # from a fake distribution with a torch-free entry point


class TestGoodEncoder(_Encoder):
    pass


class TestGoodMixedEncoder(_Encoder):
    factory = c.MixedEncoder


class TestGoodLLM(_LLM):
    pass


class TestGoodLoRA(_LoRA):
    pass


class TestGoodTask(_Task):
    pass


# -- every kind ---------------------------------------------------------------------------------------


class TestDiscoverable(ProjectorConformance):
    component_name = "broken-proj"  # its distribution's entry-point module fails to import


class TestEntryPointImportsNoTorch(ProjectorConformance):
    component_name = "torchy-proj"


class TestFactoryReturnsContract(_Projector):
    factory = c.NotAProjector


class TestConfigRoundTrip(_Projector):
    config_model = c.RoundTripConfig


class TestConfigForbidsUnknownFields(_Projector):
    config_model = c.LaxConfig


class TestConfigTypeIsTheName(_Projector):
    component_name, config_model = "stack", c.NoDefaultTypeConfig


class TestConfigDefaultsValidate(_Projector):
    config_model, config = c.BadDefaultConfig, {"dropout": 0.1}  # the tiny config hides the bad default


class TestConfigSchema(_Projector):
    config_model = c.NoConstSchemaConfig


class TestApiCompatible(_Projector):
    api = "2.0"


# -- nn.Module kinds ----------------------------------------------------------------------------------


class TestEvalDeterministic(_Projector):
    factory = c.NoisyProjector


class TestStateDictRoundTrip(_Projector):
    factory = c.UnsavedBufferProjector


class TestDtypeMove(_Projector):
    factory = c.Float32Projector


class TestDeviceMove(_Projector):
    factory = c.PlainTensorProjector


class TestGradientsMatchTrainable(_Projector):
    factory = c.UnusedParameterProjector


class TestFrozenBuildsNoGraph(_Projector):
    factory = c.UnregisteredGainProjector


# -- sequence kinds -----------------------------------------------------------------------------------


class TestLengthsExact(_Projector):
    factory = c.OffByOneProjector


class TestFramesMatchOutputLengths(_Encoder):
    factory = c.Stride320Encoder


class TestPaddingDoesNotLeak(_Projector):
    factory = c.LeakyProjector


# -- encoders -----------------------------------------------------------------------------------------


class TestDeclaresRates(_Encoder):
    factory = c.ZeroFrameRateEncoder


class TestPreprocessorTakesPipelineInput(_Encoder):
    factory = c.BareTensorEncoder


class TestShortInputRefusedClearly(_Encoder):
    factory = c.FramingEncoder


class TestPreprocessorPickles(_Encoder):
    factory = c.HeavyPreprocessorEncoder


class TestForwardEqualsHeadOfBackbone(_Encoder):
    factory = c.ShortcutEncoder


class TestHeadTrainsWithFrozenBackbone(_Encoder):
    factory = c.DetachedHeadEncoder


# -- projectors ---------------------------------------------------------------------------------------


class TestDeclaresDims(_Projector):
    factory = c.SwappedDimsProjector


# -- LLMs ---------------------------------------------------------------------------------------------


class TestEmbedShape(_LLM):
    factory = c.WrongHiddenSize


class TestLossIsShiftedCrossEntropy(_LLM):
    factory = c.UnshiftedLoss


class TestTokenizerRoundTrip(_LLM):
    factory = c.BosTokenize


class TestPromptKeepsInstruction(_LLM):
    factory = c.FixedPrompt


class TestGenerateReturnsNewTokens(_LLM):
    factory = c.PromptSlicing


# -- PEFT methods -------------------------------------------------------------------------------------


class TestAdaptersOnlyTrainable(_LoRA):
    factory = c.GreedyLoRA


class TestIdentityAtInit(_LoRA):
    factory = c.PerturbedLoRA


class TestGradientsReachAdaptersOnly(_LoRA):
    factory = c.UnusedAdapterLoRA


class TestAdapterSaveLoadRoundTrip(_LoRA):
    factory = c.ForgetfulLoRA


class TestMergeKeepsLogits(_LoRA):
    factory = c.DroppingMergeLoRA


# -- task heads ---------------------------------------------------------------------------------------


class TestInstructionAndTargetAreText(_Task):
    factory = c.WrongFieldTask


class TestReferencesAreText(_Task):
    factory = c.NoReferencesTask


class TestPostprocessReturnsText(_Task):
    factory = c.SplittingTask


class TestMetricsAreDeclared(_Task):
    factory = c.UndeclaredMetricTask


class TestPrepareReturnsNewSamples(_Task):
    factory = c.MutatingTask


class TestPrepareDrawsFromRandom(_Task):
    factory = c.UnseededTask


class TestChoicesHoldTheTarget(_Task):
    factory = c.RepeatedChoicesTask
