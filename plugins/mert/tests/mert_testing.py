"""Constants the mert plugin's test modules share (``tests/`` is put on sys.path by conftest.py)."""

#: A tiny random-init shape (overrides of a preset): two 32-wide layers over a narrow conv front end.
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "conv_dim": [16] * 7,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
}
