"""The floor: the API's request model and route shape, no model, no log, a constant answer.

Served by uvicorn with uvloop and httptools (the fastest stack available), so its req/s is
what the HTTP + validation layer alone allows on this machine.
"""

from fastapi import FastAPI

from app.schemas import PenguinFeatures

app = FastAPI()
CONSTANT_ANSWER = {"model": "floor", "species_id": 1, "species_name": "Adelie"}


@app.post("/classify/{model}")
def classify(model: str, penguin: PenguinFeatures) -> dict:  # type: ignore[valid-type]
    return CONSTANT_ANSWER
