"""From a file's bytes to one verdict per piece: detection, lots, PDFs, signatures, attachments, the stages in order."""
