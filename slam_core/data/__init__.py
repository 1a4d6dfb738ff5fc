"""Data: manifests, audio I/O, datasets, duration-bucketed batching and collation.

``build_batches(spec, split, encoder.preprocessor())`` gives the trainer and the decoder a
:class:`~slam_core.data.batch.ResumableBatches` of :class:`~slam_core.data.batch.Batch`.
"""

from slam_core.data.audiofile import audio_seconds, read_audio
from slam_core.data.batch import Batch, ResumableBatches
from slam_core.data.dataset import SampleDataset, collate
from slam_core.data.errors import AudioFileError, BadSampleError, DataError, ManifestError
from slam_core.data.index import SampleIndex, index_entries
from slam_core.data.loader import Batches, build_batches, manifest_batches
from slam_core.data.manifest import Entry, read_manifest
from slam_core.data.sampler import BatchPlanner, BatchRule

__all__ = [
    "AudioFileError",
    "BadSampleError",
    "Batch",
    "BatchPlanner",
    "BatchRule",
    "Batches",
    "DataError",
    "Entry",
    "ManifestError",
    "ResumableBatches",
    "SampleDataset",
    "SampleIndex",
    "audio_seconds",
    "build_batches",
    "collate",
    "index_entries",
    "manifest_batches",
    "read_audio",
    "read_manifest",
]
