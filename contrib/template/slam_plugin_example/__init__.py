"""SLAM plugin template: a mean-pooling projector (``type: example-projector``).

Keep this module free of torch imports: discovery imports the entry-point module
(:mod:`slam_plugin_example.plugin`), and ``slam plugins`` must stay fast.
"""
