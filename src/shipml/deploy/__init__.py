"""Deploying a registered model: `write_bundle` makes a folder `docker build` turns into an image
that serves it (pinned requirements, a shipml wheel, a copy of the version, a Dockerfile)."""

from shipml.deploy.bundle import write_bundle

__all__ = ["write_bundle"]
