"""The errors of the human assessment kit (a module of its own, so that the study,
its store and the server import it without importing each other)."""


class StudyError(Exception):
    """A study that cannot be built, opened or used; the message says why."""


class LimitError(StudyError):
    """A documented limit of the study server was reached (raters per study, events per rater)."""


class OrderError(StudyError):
    """A vote for a trial that is not the rater's next one (trials are answered in plan order)."""
