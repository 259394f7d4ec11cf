"""An accepted piece's parties, links to earlier pieces, unique numbers, delivery."""
