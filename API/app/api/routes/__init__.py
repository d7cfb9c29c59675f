from fastapi import APIRouter

from app.api.routes import classify, health, models, reports, ui, v2

ROUTERS: tuple[APIRouter, ...] = (
    classify.router,
    v2.router,
    models.router,
    reports.router,
    health.router,
    ui.router,
)
