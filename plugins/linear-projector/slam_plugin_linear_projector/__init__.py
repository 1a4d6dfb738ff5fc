"""SLAM plugin: the linear frame-stacking projector (``type: linear-projector``)."""
