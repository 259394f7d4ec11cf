"""Every table and every query: flows, pieces, events, partners, the directory; the database engine."""
