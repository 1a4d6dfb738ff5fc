"""SLAM plugin: the AV-HuBERT lip-reading / audio-visual speech encoder (``type: av-hubert``)."""
