"""The original design, as a baseline: glob the models and joblib.load on every request.

Same request model, same stack (uvicorn + uvloop + httptools) and the same kind of log line
as the API, so the difference measured is the design, not the server. It predicts on a NumPy
row (not a 1-row DataFrame), which is the kinder choice for the baseline.
"""

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
from fastapi import FastAPI, HTTPException

from app.schemas import PenguinFeatures
from penguin_contract import FEATURES, SPECIES

app = FastAPI()


@app.post("/classify/{model}")
def classify(model: str, penguin: PenguinFeatures) -> dict:  # type: ignore[valid-type]
    models_dir = Path(os.environ["MODELS_DIR"])
    available = {path.name.removesuffix("_model.pkl") for path in models_dir.glob("*_model.pkl")}
    if model not in available:
        raise HTTPException(404, f"Model {model!r} not found")
    pipeline = joblib.load(models_dir / f"{model}_model.pkl")
    row = np.array([[getattr(penguin, name) for name in FEATURES]], dtype=np.float64)
    species_id = int(pipeline.predict(row)[0])
    result = {"model": model, "species_id": species_id, "species_name": SPECIES[species_id]}
    line = {"timestamp": datetime.now(UTC).isoformat(), "input": penguin.model_dump(), **result}
    with open(Path(os.environ["RESULTS_DIR"]) / "predictions.log", "a") as log:
        log.write(json.dumps(line) + "\n")
    return result
