"""HTTP serving: FastAPI app, Open Inference Protocol v2, API keys, rate limits, metrics."""
