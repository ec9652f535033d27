"""Learners: one module per kind of data; each implements the contract in `base`."""
