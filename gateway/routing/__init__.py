"""Routing at intake: an accepted piece gets its parties, its number is
checked for uniqueness, it is linked to the piece it continues (public
works), and it is delivered to the party it now waits for.

Deliveries land in `outbox/<party>/<service or _>/` as the original bytes,
the documents that came with it and a CPPFacturePivot data file written
last (a connector may take the pivot as the sign that the piece is there).
File names derive from the piece id, so a flow run again after a crash
rewrites the same files: nothing is delivered twice.
"""
