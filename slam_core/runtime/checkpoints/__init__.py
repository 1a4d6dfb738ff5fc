"""Checkpoints on disk: their layout (:mod:`.layout`: names, latest/best, reading parts) and safe file
operations (:mod:`.io`: checked reads, atomic writes). Training writes them
(:mod:`slam_core.runtime.train.checkpoint`); ``slam infer`` reads their trainable weights."""
