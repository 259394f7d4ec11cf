"""The ground floor: typed records, return codes, settings, file and XML safety, the canonical invoice."""
