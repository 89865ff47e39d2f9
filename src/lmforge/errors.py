"""The one exception type for bad input: the CLI prints it as a single line and exits with code 2."""


class InputError(Exception):
    """Bad input a person can fix: the message names the file or flag, the cause and the fix."""
