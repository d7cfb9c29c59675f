"""Production launcher: ``python -m app.serve`` (from ``API/``) runs uvicorn in factory mode
with API_WORKERS workers (a dead one is replaced; SIGTERM drains them). Slow clients and
per-client limits are the reverse proxy's job (the README's classroom profile)."""

import uvicorn

from app.core.config import Settings

APP_FACTORY = "app.main:create_app"
# Docker sends SIGKILL 10 s after SIGTERM: finish in-flight requests well before that.
GRACEFUL_SHUTDOWN_SECONDS = 8
# A spawned worker imports scikit-learn and pandas before it answers the supervisor's ping:
# with uvicorn's 5 s, N workers starting on a busy machine were killed and respawned in a loop.
WORKER_HEALTHCHECK_TIMEOUT_SECONDS = 60


def main() -> None:
    settings = Settings()
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        # Every prediction is already in the prediction log and every request in /metrics.
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT_SECONDS,
    )


if __name__ == "__main__":
    main()
