"""The running daemon's parts: shared runtime, camera lines, workers, supervision,
reload, watchdog, metrics, logs."""
