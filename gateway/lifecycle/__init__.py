"""Life after delivery: the status machine, status changes, notices, status files received."""
