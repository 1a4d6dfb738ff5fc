"""SLAM plugin: the MERT-v1 music encoder (``type: mert``)."""
