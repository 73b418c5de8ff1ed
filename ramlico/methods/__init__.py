"""One LightningModule per method; eval-only methods refuse training."""

from ramlico.methods.base import RamlicoModule
from ramlico.methods.clip_adapter import CLIPAdapter
from ramlico.methods.clip_zeroshot import CLIPZeroShot
from ramlico.methods.lazsl import LaZSL
from ramlico.methods.lico import LICOModule
from ramlico.methods.otfusion import OTFusion
from ramlico.methods.ram import RAM

__all__ = ["CLIPAdapter", "CLIPZeroShot", "LaZSL", "LICOModule", "OTFusion", "RAM", "RamlicoModule"]
