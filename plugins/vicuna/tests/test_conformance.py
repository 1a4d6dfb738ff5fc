"""vicuna: the SLAM conformance kit on a tiny saved-and-reloaded Llama checkpoint."""

from __future__ import annotations

import pytest

from slam_core.testing import LLMConformance


class TestVicunaConformance(LLMConformance):
    component_name = "vicuna"

    @pytest.fixture(autouse=True)
    def _tiny_checkpoint(self, tiny_dir):
        self.config = {"path": str(tiny_dir), "dtype": "fp32"}
