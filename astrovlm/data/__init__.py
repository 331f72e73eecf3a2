"""Sources, readers and the dataset form of astrovlm (see ``records`` for the layout)."""

from astrovlm.data.records import ImageRecord, Passage, SkyDataset, SkyObject, SpectrumRecord

__all__ = ["ImageRecord", "Passage", "SkyDataset", "SkyObject", "SpectrumRecord"]
