"""aiops-agent: an AIOps agent for AWS."""

__version__ = "0.1.0"
