"""File formats out of (and into) the backend: one module per format."""
