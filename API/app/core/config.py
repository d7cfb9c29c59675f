"""Configuration from the environment: one settings object for the whole API."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


class Settings(BaseSettings):
    """Every option is set by the environment variable named in its alias.

    Slow clients, header sizes and per-client limits are the reverse proxy's job (nginx in
    the classroom profile, the Ingress on Kubernetes); the app only bounds body sizes.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    models_dir: Path = Field(
        Path("/app/models"),
        alias="MODELS_DIR",
        description="Where {name}_model.pkl and their ONNX twins {name}_model.onnx live",
    )
    report_path: Path = Field(
        Path("/app/report/model_metrics.pkl"),
        alias="REPORT_PATH",
        description="The trainer's report (pickled DataFrame); its JSON twin sits beside it",
    )
    results_dir: Path = Field(
        Path("/app/results"), alias="RESULTS_DIR", description="Where the prediction log lives"
    )
    allow_pickle: bool = Field(
        True,
        alias="ALLOW_PICKLE",
        description="false: never unpickle anything (a pickle runs code when loaded): serve "
        "only ONNX twins and read metrics only from model_metrics.json",
    )
    max_model_bytes: int = Field(
        64 * MiB, ge=1, alias="MAX_MODEL_BYTES", description="Larger model files are errors"
    )
    predictions_log_name: str = Field(
        "predictions.log",
        alias="PREDICTIONS_LOG_NAME",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="The prediction log's file name in RESULTS_DIR (one per pod on Kubernetes)",
    )
    log_fsync: bool = Field(
        False, alias="LOG_FSYNC", description="fsync the log after every write (power loss)"
    )
    log_max_bytes: int = Field(
        64 * MiB, ge=4096, alias="LOG_MAX_BYTES", description="Rotate the log before this size"
    )
    log_backups: int = Field(
        5, ge=1, le=100, alias="LOG_BACKUPS", description="Rotated prediction logs kept"
    )
    log_lock_timeout_s: float = Field(
        1.0,
        gt=0,
        le=30,
        alias="LOG_LOCK_TIMEOUT_S",
        description="Longest wait for another process's lock on the log; then 503",
    )
    max_batch_size: int = Field(
        1000, ge=1, alias="MAX_BATCH_SIZE", description="Rows accepted by one batch request"
    )
    max_body_bytes: int = Field(
        512 * 1024,
        ge=1024,
        alias="MAX_BODY_BYTES",
        description="Larger request bodies get 413 (1000 pretty-printed instances take ~250 kB)",
    )
    # Read by app/serve.py (the launcher), not by the app itself.
    host: str = Field("127.0.0.1", alias="API_HOST")
    port: int = Field(8000, ge=1, le=65535, alias="API_PORT")
    workers: int = Field(1, ge=1, alias="API_WORKERS")

    @property
    def predictions_log_path(self) -> Path:
        return self.results_dir / self.predictions_log_name
