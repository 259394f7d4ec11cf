"""What operators use: the command line, the web pages, reports."""
