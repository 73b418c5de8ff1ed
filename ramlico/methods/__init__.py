"""One LightningModule per method; eval-only methods refuse training."""

from ramlico.methods.base import RamlicoModule
from ramlico.methods.clip_adapter import CLIPAdapter
from ramlico.methods.clip_zeroshot import CLIPZeroShot

__all__ = ["CLIPAdapter", "CLIPZeroShot", "RamlicoModule"]
