"""Constants the mert plugin's test modules share (``tests/`` is put on sys.path by conftest.py)."""

#: A tiny random-init ``shape`` (overrides of a preset): two 32-wide layers over a narrow conv front end.
TINY = {
    "hidden_size": 32,
    "num_layers": 2,
    "num_heads": 4,
    "intermediate_size": 64,
    "conv_dim": [16] * 7,
    "conv_pos_kernel": 16,
    "conv_pos_groups": 4,
}
