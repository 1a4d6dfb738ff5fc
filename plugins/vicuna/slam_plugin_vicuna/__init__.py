"""SLAM plugin: Llama-family causal LMs (Vicuna, Llama 2/3, SmolLM2, ...) through transformers (``type: vicuna``)."""
