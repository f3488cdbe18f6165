"""The memory bank: FAISS keys, SQLite records and token shards on disk.

Imports no torch models and no pipeline code.
"""
