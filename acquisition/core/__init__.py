"""The leaf every layer builds on: the project's exceptions, dataclass configs from TOML and
the pool types. It imports nothing else of the project."""
