"""The team's own code, shared by the notebook (training) and main.py (serving)."""
