"""Data: manifests, audio I/O, datasets, duration-bucketed batching and collation.

``build_batches(spec, split, encoder.preprocessor())`` gives the trainer and the decoder a
:class:`~slam_core.runtime.data.batch.ResumableBatches` of :class:`~slam_core.runtime.data.batch.Batch`.
"""

from slam_core.runtime.data.audiofile import audio_seconds, read_audio
from slam_core.runtime.data.batch import Batch, ResumableBatches
from slam_core.runtime.data.dataset import SampleDataset, collate
from slam_core.runtime.data.errors import AudioFileError, BadSampleError, DataError, ManifestError
from slam_core.runtime.data.index import SampleIndex, index_entries
from slam_core.runtime.data.loader import Batches, build_batches, manifest_batches
from slam_core.runtime.data.manifest import Entry, read_manifest
from slam_core.runtime.data.sampler import BatchPlanner, BatchRule

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
