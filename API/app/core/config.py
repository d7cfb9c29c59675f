"""Configuration from the environment: one settings object for the whole API."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PREDICTIONS_LOG_NAME = "predictions.log"


class Settings(BaseSettings):
    """Every option can be set by the environment variable named in its alias or in capitals."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    models_dir: Path = Field(
        Path("/app/models"), alias="MODELS_DIR", description="Where {name}_model.pkl live"
    )
    report_path: Path = Field(
        Path("/app/report/model_metrics.pkl"),
        alias="REPORT_PATH",
        description="Pickled pandas DataFrame with one metrics row per model",
    )
    results_dir: Path = Field(
        Path("/app/results"), alias="RESULTS_DIR", description="Where predictions.log is appended"
    )
    log_fsync: bool = Field(
        False,
        alias="LOG_FSYNC",
        description="fsync predictions.log after every write (survives power loss, slower)",
    )
    max_batch_size: int = Field(
        1000, ge=1, alias="MAX_BATCH_SIZE", description="Rows accepted by one batch request"
    )
    max_body_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        alias="MAX_BODY_BYTES",
        description="Largest request body accepted; larger bodies get 413",
    )
    # Read by app/serve.py (the launcher), not by the app itself.
    host: str = Field("127.0.0.1", alias="API_HOST")
    port: int = Field(8000, ge=1, le=65535, alias="API_PORT")
    workers: int = Field(1, ge=1, alias="API_WORKERS")

    @property
    def predictions_log_path(self) -> Path:
        return self.results_dir / PREDICTIONS_LOG_NAME
