"""longwatch: question answering over hour-long videos and live streams.

Importing the package is cheap; heavy modules (torch, transformers, faiss) load inside the functions that need them.
"""

__version__ = "0.1.0"
