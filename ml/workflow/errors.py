"""The one error a workflow step raises for a problem the user can fix."""


class StepError(RuntimeError):
    """A step cannot run as configured; the message says what is wrong and what to do."""
