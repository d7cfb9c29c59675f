"""The API's error hierarchy. One handler (see main.py) turns any of them into HTTP."""


class PenguinAPIError(Exception):
    """Base class: a message safe to show to clients and the HTTP status it maps to."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelNotFoundError(PenguinAPIError):
    status_code = 404
    code = "model_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"Model {name!r} not found. GET /models lists the available models "
            "('best' is the one with the highest test_f1)."
        )


class NoBestModelError(PenguinAPIError):
    status_code = 404
    code = "model_not_found"

    def __init__(self) -> None:
        super().__init__(
            "No usable model has a test_f1 in the metrics report, so 'best' cannot be "
            "resolved. GET /models lists the available models."
        )


class ModelUnavailableError(PenguinAPIError):
    """The model file exists but cannot be served (corrupt, not a pipeline, incompatible)."""

    status_code = 500
    code = "model_unavailable"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(
            f"Model {name!r} cannot be used: {reason}. Retrain it or remove its file; "
            "the other models keep working (GET /models)."
        )


class BatchTooLargeError(PenguinAPIError):
    status_code = 413
    code = "batch_too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"Batch of {size} rows exceeds the maximum of {limit} rows per request.")


class BodyTooLargeError(PenguinAPIError):
    status_code = 413
    code = "body_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The request body is larger than the maximum of {limit} bytes (MAX_BODY_BYTES)."
        )


class PredictionLogError(PenguinAPIError):
    """The prediction could not be appended to predictions.log, so it is not returned."""

    status_code = 503
    code = "prediction_not_logged"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"The prediction could not be written to the prediction log ({reason}); "
            "no prediction is returned unless it is logged. Check that RESULTS_DIR is "
            "writable and not full (GET /ready)."
        )


class RequestTimeoutError(PenguinAPIError):
    """The client did not finish sending its request in time (HEADER_TIMEOUT_S, BODY_TIMEOUT_S)."""

    status_code = 408
    code = "request_timeout"

    def __init__(self, part: str, timeout_s: float, setting: str) -> None:
        super().__init__(
            f"The {part} of the request did not arrive within {timeout_s:g} s ({setting}). "
            "Send the whole request at once; the connection is closed."
        )
