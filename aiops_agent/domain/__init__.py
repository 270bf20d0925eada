"""The pure core: models, messages, the state machine and the ports it is driven through."""
