"""The SLAM conformance kit: one base test class per component kind.

A plugin's test subclasses the class for its kind and sets a tiny config::

    from slam_core.testing import ProjectorConformance

    class TestMyProjector(ProjectorConformance):
        component_name = "my-projector"   # the registered type; found through the entry point
        config = {"hidden_dim": 32}       # tiny settings (``type`` is added for you)

pytest collects every ``test_*`` method of the base class against the plugin's component.
The kit is a pytest plugin (entry point ``pytest11``), so installing slam-core is enough.
Components not (yet) installed through an entry point can set ``factory`` and
``config_model`` instead of relying on discovery; the discovery test is then skipped.
"""

from slam_core.testing.contracts import (
    ComponentConformance,
    EncoderConformance,
    LLMConformance,
    PEFTConformance,
    ProjectorConformance,
    TaskHeadConformance,
)

__all__ = [
    "ComponentConformance",
    "EncoderConformance",
    "LLMConformance",
    "PEFTConformance",
    "ProjectorConformance",
    "TaskHeadConformance",
]
