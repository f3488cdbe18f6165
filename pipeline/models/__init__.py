"""Model presets, loaders and one adapter per VLM family.

Everything that turns frames or text into model inputs, and model outputs into text or scores.
"""
