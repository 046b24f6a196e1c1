"""The demo: Genba's main job on the embedded defaults (a shell above every package)."""
