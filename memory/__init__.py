"""The memory bank: FAISS keys, SQLite records and token shards on disk.

Imports no torch models and no pipeline code.
"""

from longwatch.memory.bank import MemoryBank
from longwatch.memory.index import IndexConfig
from longwatch.memory.records import (EVIDENCE_KINDS, BankBusy, BankInputError, BankWarning, ClipRecord, Evidence,
                                      EvidenceHit, EvidenceRecord, Gap, Hit, InvalidVideoId, TokenRef, VideoRecord,
                                      check_video_id)

__all__ = ["MemoryBank", "IndexConfig", "ClipRecord", "VideoRecord", "Gap", "Hit", "TokenRef", "BankInputError",
           "BankBusy", "InvalidVideoId", "check_video_id", "BankWarning", "EVIDENCE_KINDS", "Evidence",
           "EvidenceRecord", "EvidenceHit"]
