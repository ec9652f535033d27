"""Versioned models: metadata in a database (store), files as data with a sha256 manifest."""
