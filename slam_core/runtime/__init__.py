"""The runtime layer: data, training engines, decoding and scoring, task heads, metrics, the CLI.

It imports the core proper (:mod:`slam_core` outside this package); the core never imports it.
"""
