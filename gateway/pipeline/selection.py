"""The validation profile the workers run and `gateway validate` runs unless
told otherwise (pipeline/stages.py's SELECTIONS says what each profile runs).
Alone in a module with no imports: the command line shows it in its help."""
DEFAULT_SELECTION = "chorus"
