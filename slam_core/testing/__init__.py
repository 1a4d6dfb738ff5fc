"""The SLAM conformance kit: one base test class per component kind, one test per rule.

A plugin's test subclasses the class for its kind and sets a tiny config::

    from slam_core.testing import ProjectorConformance

    class TestMyProjector(ProjectorConformance):
        component_name = "my-projector"   # the registered type; found through the entry point
        config = {"hidden_dim": 32}       # tiny settings (``type`` is added for you)

pytest collects every ``test_*`` method of the base class against the plugin's component. Each
checks one rule of :data:`~slam_core.testing.rules.RULES` against what the component computes,
and a failure reads ``rule <id>: <what it computed>``. The kit is a pytest plugin (entry point
``pytest11``), so installing slam-core is enough. Components not (yet) installed through an
entry point can set ``factory`` and ``config_model`` instead of relying on discovery; the
rules about the entry point are then skipped. The kit imports nothing from the runtime.
"""

from slam_core.testing.base import ComponentConformance
from slam_core.testing.llm import LLMConformance
from slam_core.testing.modules import ModuleConformance
from slam_core.testing.peft import PEFTConformance
from slam_core.testing.rules import RULES, ConformanceFailure, Rule
from slam_core.testing.sequences import EncoderConformance, ProjectorConformance, SequenceConformance
from slam_core.testing.tasks import TaskHeadConformance

__all__ = [
    "RULES",
    "ComponentConformance",
    "ConformanceFailure",
    "EncoderConformance",
    "LLMConformance",
    "ModuleConformance",
    "PEFTConformance",
    "ProjectorConformance",
    "Rule",
    "SequenceConformance",
    "TaskHeadConformance",
]
