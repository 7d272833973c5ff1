class AisoError(Exception):
    """A problem the user can fix. The message is one line: what is wrong and what to do."""
