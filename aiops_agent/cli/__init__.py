"""The command line: argument parsing, the commands and how they print."""
