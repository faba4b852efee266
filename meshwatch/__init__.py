"""meshwatch: observability-as-code for multi-agent AI systems."""

__version__ = "0.1.0"
