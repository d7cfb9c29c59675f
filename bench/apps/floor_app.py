"""The FastAPI floor: plain FastAPI with the API's request and response models, no work.

The same route as the API's ``POST /classify/{model}`` written the way FastAPI's tutorial
writes it: an ``async`` endpoint, the body validated into ``PenguinFeatures`` and the
returned value checked and encoded through the ``Prediction`` response model by FastAPI's
default JSON handling. It returns a prediction built once at import, so its req/s is what
plain FastAPI costs for this request model on this machine, with no model, log, metrics or
middleware. Served by the same uvicorn + uvloop + httptools stack as the API.

``sync_app`` is the same route as a plain ``def`` (as the API's batch route is): FastAPI runs
it, and the validation of what it returns, in a worker thread. It is not the floor; bench/run.py
shows it on an `info` row, to tell what those two hops cost over HTTP.
"""

from fastapi import FastAPI

from app.schemas import PenguinFeatures, Prediction

# What the API answers for the README's Adelie with svm (no predict_proba).
PREBUILT = Prediction(
    model="svm",
    model_version="0" * 64,
    species_id=1,
    species_name="Adelie",
    probabilities=None,
    runtime="onnx",
)

app = FastAPI()


@app.post("/classify/{model}")
async def classify(model: str, features: PenguinFeatures) -> Prediction:
    return PREBUILT


sync_app = FastAPI()


@sync_app.post("/classify/{model}")
def classify_in_thread(model: str, features: PenguinFeatures) -> Prediction:
    return PREBUILT
