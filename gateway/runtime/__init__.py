"""The service and its workers."""
