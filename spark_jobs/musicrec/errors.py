"""Errors the jobs report to the user as a message, not as a stack trace."""


class PipelineError(Exception):
    """Bad input or a failed precondition: the message says what, where and what to do.

    Jobs catch it, write the message to their result file and exit non-zero; the Airflow
    operator raises it as the task's error without retrying (the same input fails the same way).
    """


class TransientError(PipelineError):
    """A failure worth retrying (network trouble): the operator lets Airflow retry it."""
