"""Provisioning AWS: the resources `bootstrap` creates and the IAM policy the agent needs."""
