"""SLAM plugin: the BEATs audio encoder (``type: beats``)."""
