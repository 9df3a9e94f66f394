"""Models and input pipelines (imports `network` first: graph mode)."""
import network  # noqa: F401
