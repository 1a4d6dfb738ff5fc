"""The embedded demo's code (``slam demo``), beside its recipe folder ``demo/``.

:mod:`.run` runs the three stages and prints ``WER: N%``; :mod:`.ctc` is stage 1 (the encoder
alone, with a CTC head). Importing this package imports no torch.
"""
