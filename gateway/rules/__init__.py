"""What an invoice is judged by: XSD, EN 16931 rule sets, mappings to the canonical invoice, French controls, the directory."""
