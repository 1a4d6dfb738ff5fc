"""SLAM plugin: self-supervised speech encoders through transformers (``wav2vec2``, ``hubert``, ``wavlm``,
``data2vec-audio``)."""
