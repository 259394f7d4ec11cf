"""What partners read: flow reports, status files, the recipient's pivot."""
