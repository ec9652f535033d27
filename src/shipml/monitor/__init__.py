"""Watching a model in production: data and prediction drift against a training reference.

``reference.build_reference`` summarizes the training table once (saved with the model as JSON);
``drift.dataset_drift`` / ``drift.prediction_drift`` compare recent inputs and predictions with
it, following Evidently's default drift-test selection. ``log`` is the prediction log the server
writes; ``check.monitor`` reads it over a time window, runs the drift tests and scores the
feedback labels (``shipml monitor``); ``report`` renders the result as one HTML file.
"""
