"""CLI verbs, one module each: argument parsing and composition only."""
