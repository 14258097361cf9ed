"""Logging a failure that repeats until something outside comes back (Redis, the
database): one warning when it starts, one line when it works again, not one per try."""

import logging
import threading


class OutageLog:
    """``failing`` is a %-format of one value, what failed; ``working`` a str.format
    template that may name ``{failures}``, how many tries failed meanwhile."""

    def __init__(self, *, logger: logging.Logger, failing: str, working: str):
        self.logger, self.failing, self.working = logger, failing, working
        self.failures = 0
        # Sends after commit fail in the ORM's thread, others on the event loop.
        self.lock = threading.Lock()

    def failed(self, detail: str) -> None:
        with self.lock:
            self.failures += 1
            first = self.failures == 1
        if first:
            self.logger.warning(self.failing, detail)

    def worked(self) -> None:
        if not self.failures:
            return
        with self.lock:
            failures, self.failures = self.failures, 0
        if failures:
            self.logger.info(self.working.format(failures=failures))
