"""Generators for sample videos, bad inputs and question sets.

No large binaries live in git; everything here is produced on demand.
"""
