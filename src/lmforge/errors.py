"""Every exception type lmforge raises on purpose: bad input (exit 2, one line) and the two ways training
stops early (a diverged run exits 1, an interrupted one 130), so the CLI needs no import from below."""


class InputError(Exception):
    """Bad input a person can fix: the message names the file or flag, the cause and the fix."""


class TrainingDiverged(Exception):
    """Repeated NaN/inf losses; the last checkpoint on disk is still good."""


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM: the step under way was finished and checkpointed."""
