"""E-invoicing exchange gateway."""
__version__ = "0.1.0"
