"""Sentence encoders: texts -> normalized vectors from a pretrained transformer, on a CPU.

>>> from shipml.encoders import load_encoder
>>> enc = load_encoder()            # packaged all-MiniLM-L6-v2, offline   # doctest: +SKIP
>>> enc.encode(["card lost", "where is my refund"]).shape                  # doctest: +SKIP
(2, 384)

Importing this package is cheap: PyTorch and transformers load when an encoder does. Without
them, loading raises MissingDependency with the fix (`pip install "shipml[text]"`).
"""

from shipml.encoders.loading import DEFAULT_ENCODER, from_artifacts, load_encoder
from shipml.encoders.sentence import EncodeReport, SentenceEncoder

__all__ = ["DEFAULT_ENCODER", "EncodeReport", "SentenceEncoder", "from_artifacts", "load_encoder"]
