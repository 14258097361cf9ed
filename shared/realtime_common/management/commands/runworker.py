from channels.management.commands import runworker

from realtime_common.worker import ResilientWorker


class Command(runworker.Command):
    help = "Runs a worker on the named channels that survives channel layer outages (realtime_common.worker)."
    worker_class = ResilientWorker
