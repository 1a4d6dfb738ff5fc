"""slam-recipes: the paper recipes and the embedded demo, shipped as package data.

Each recipe is a folder of this package (``recipes/<name>/`` in a clone): its pipeline spec(s),
a README with the paper's figures and, where the data needs it, ``prepare_data.py``. The
distribution registers two ``slam`` subcommands through the ``slam.plugins`` entry point
(:mod:`slam_recipes.plugin`): ``slam demo`` and ``slam recipes list | copy``. Folders whose name
starts with ``_`` hold shared code, not recipes (``_prep``: the data-preparation helpers the
``prepare_data.py`` scripts import; ``_demo``: the demo's stages).

Importing this package imports no torch.
"""
