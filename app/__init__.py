"""Public Python API, CLI and batch runner.

Built on `longwatch.pipeline`; holds no model or index logic of its own.
"""
