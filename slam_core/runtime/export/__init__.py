"""``slam export``: a trained run as a folder that loads without its spec, run or data (:mod:`.folder`),
or in the format of a transformers model class (:mod:`.voxtral`); :func:`~.writer.export_run` writes either.

Load an export with :func:`slam_core.runtime.infer.weights.load_trained`, as a run (docs/export.md).
"""
