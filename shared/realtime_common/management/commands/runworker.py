from channels.management.commands import runworker

from realtime_common.metrics import metrics_init, metrics_serve
from realtime_common.worker import ResilientWorker


class Command(runworker.Command):
    help = "Runs a worker on the named channels that survives channel layer outages (realtime_common.worker)."
    worker_class = ResilientWorker

    def handle(self, *args, **options):
        # The worker has no HTTP server of its own: its metrics get one, on DJANGO_METRICS_PORT when set.
        metrics_init()
        metrics_serve()
        super().handle(*args, **options)
