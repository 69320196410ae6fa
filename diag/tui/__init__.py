"""The installer's dashboard (Textual): ``diag tui --site FILE``."""
