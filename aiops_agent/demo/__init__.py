"""The one-command tour: an embedded AWS emulator, the bundled scenarios, the demo IaC stand-in."""
