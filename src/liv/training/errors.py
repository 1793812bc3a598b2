"""The one error type of training (here, not in liv.train, so the modules of liv.training can raise it)."""


class TrainingError(RuntimeError):
    """Training cannot go on (bad data, a diverged loss, a run directory in the way, ...); the message says
    why and what was kept."""
