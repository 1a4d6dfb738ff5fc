"""Task heads built into slam-core."""
