"""Gradio web UI, built only on `longwatch.app`.

Imported only when the `ui` extra is installed.
"""
