"""GET /: the web page (static/ui/), under a Content-Security-Policy that allows only this origin.

The page is plain HTML with its script and style in separate files, so the policy needs no
'unsafe-inline'. Its assets are served by the /static mount (see app.docs).
"""

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter()

UI_DIR = Path(__file__).resolve().parents[2] / "static" / "ui"
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def _page() -> bytes:
    return (UI_DIR / "index.html").read_bytes()


@router.get("/", include_in_schema=False)
async def web_page() -> HTMLResponse:
    """Classify a penguin with every model, compare the models, watch the predictions."""
    return HTMLResponse(_page(), headers=PAGE_HEADERS)
