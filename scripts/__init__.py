"""Development tooling: the embedded Redis and the `make run` launcher. Not imported by the service."""
