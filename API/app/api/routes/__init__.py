from fastapi import APIRouter

from app.api.routes import classify, health, models, reports, ui, v2

api_router = APIRouter()
# Routes are matched in order: the hot path first.
api_router.include_router(classify.router)
api_router.include_router(models.router)
api_router.include_router(reports.router)
api_router.include_router(health.router)
api_router.include_router(v2.router)
api_router.include_router(ui.router)
