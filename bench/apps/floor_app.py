"""The floor: the API's request model and route shape, no model, no log, a constant answer.

Served by uvicorn with uvloop and httptools (the fastest stack available), and given every
HTTP-layer shortcut the API itself takes (an async endpoint, the body parsed by orjson through
the API's route class, a response encoded once), so its req/s is what the HTTP + validation
layer alone allows on this machine and the API is never measured against a slower floor.
"""

from fastapi import APIRouter, FastAPI, Response

from app.api.json_route import OrjsonRoute
from app.schemas import PenguinFeatures

CONSTANT_ANSWER = b'{"model":"floor","species_id":1,"species_name":"Adelie"}'
router = APIRouter(route_class=OrjsonRoute)


@router.post("/classify/{model}")
async def classify(model: str, penguin: PenguinFeatures) -> Response:  # type: ignore[valid-type]
    return Response(CONSTANT_ANSWER, media_type="application/json")


app = FastAPI()
app.include_router(router)
