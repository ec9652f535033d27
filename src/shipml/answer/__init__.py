"""Answering customers' questions from an FAQ (or a folder of pages), and handing over to a
person when unsure.

>>> import shipml
>>> model = shipml.train("faq.csv", task="answer", name="helpdesk")    # doctest: +SKIP
>>> model.answer("my card still hasn't arrived")["handover"]          # doctest: +SKIP
False

Importing this package is cheap: the encoder, bm25s and scikit-learn load when a model does.
"""

from shipml.answer.faq import AnswerWarning
from shipml.answer.model import AnswerModel, load
from shipml.answer.training import train_answer

__all__ = ["AnswerModel", "AnswerWarning", "load", "train_answer"]
