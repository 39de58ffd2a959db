"""Serving: prediction API, model cache, routing and access rules, logs, monitoring, drift."""
