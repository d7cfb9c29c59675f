from fastapi import APIRouter

from app.api.routes import classify, health, models, reports, ui, v2

# Routes are matched in order: the prediction routes first (each router passed costs a few
# microseconds on every request behind it). The app includes each router itself:
# FastAPI re-checks every level of nested routers on each request (~10 us for one level).
ROUTERS: tuple[APIRouter, ...] = (
    classify.router,
    v2.router,
    models.router,
    reports.router,
    health.router,
    ui.router,
)
