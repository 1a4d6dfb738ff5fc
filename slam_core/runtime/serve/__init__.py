"""``slam serve``: a trained model behind the OpenAI audio transcription API.

- :mod:`.transcriber`: a run folder (or checkpoint) to a model that transcribes waveforms in batches;
- :mod:`.batcher`: requests gathered into batches, bounded in latency and in waiting requests;
- :mod:`.app`: the HTTP routes (``POST /v1/audio/transcriptions``, ``GET /v1/models``, ``GET /health``);
- :mod:`.command`: the ``slam serve`` command (declared by slam-core through the ``slam_commands`` hook).

Needs the ``serve`` extra (``pip install 'slam-core[serve]'``: fastapi, uvicorn, python-multipart).
"""
