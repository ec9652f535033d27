"""Recommendation: user-item logs -> ranked items (the `recommend` task kind).

A log of who bought, clicked, watched or rated what (and when) is read into `Interactions`
(interactions.py: integer codes for users and items, a confidence weight per event, its time);
the evaluation protocol (protocol.py) holds out each user's latest events; the recommender
families of learners/ (popularity, item-kNN, EASE, ALS/BPR, a sequential Transformer) fit on the
rest under the time plan and are searched and blended through the same search and ensemble
selection as the tabular families (learners/registry.py's RECOMMENDERS); `RecModel` (model.py)
answers top-k for a user, a basket or an item, with cold-start fallbacks, and is stored as data
only (ID maps as JSON, vectors as .npy / safetensors).
"""
