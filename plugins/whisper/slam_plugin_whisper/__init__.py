"""SLAM plugin: the Whisper audio encoder (``type: whisper``)."""
