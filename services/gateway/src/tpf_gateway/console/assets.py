"""The console's files: plain HTML, CSS and ES modules shipped inside this package.

Nothing is built and nothing is fetched from elsewhere (clusters are often air-gapped): the
files under `static/` are read once at start with importlib.resources, from wherever the
package is installed, and served from memory. Every `/console` answer carries a
Content-Security-Policy that allows only this origin's own files: no inline script or style,
no other host, no framing.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable

from aiohttp import web

CONSOLE_PATH = "/console"
ASSETS_PATH = f"{CONSOLE_PATH}/assets"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

_CONTENT_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_TEXT = {".html", ".css", ".js", ".svg"}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    charset: str | None


def load_assets() -> dict[str, Asset]:
    """Every file under `static/`, by its path relative to it (`index.html`, `js/api.js`)."""
    root = resources.files(__package__ or "tpf_gateway.console") / "static"
    assets: dict[str, Asset] = {}
    _collect(root, "", assets)
    if "index.html" not in assets:
        raise RuntimeError(f"the console's index.html is missing from {root}")
    return assets


def _collect(folder: Traversable, prefix: str, into: dict[str, Asset]) -> None:
    for entry in folder.iterdir():
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            _collect(entry, f"{name}/", into)
            continue
        suffix = "." + entry.name.rpartition(".")[2]
        if suffix not in _CONTENT_TYPES:
            continue
        into[name] = Asset(
            body=entry.read_bytes(),
            content_type=_CONTENT_TYPES[suffix],
            charset="utf-8" if suffix in _TEXT else None,
        )


class AssetServer:
    """`/console` (redirect), `/console/` (the page) and `/console/assets/{path}`."""

    def __init__(self, assets: dict[str, Asset]) -> None:
        self._assets = assets

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(CONSOLE_PATH, self._redirect)
        app.router.add_get(f"{CONSOLE_PATH}/", self._index)
        app.router.add_get(ASSETS_PATH + "/{path:.+}", self._asset)

    async def _redirect(self, _: web.Request) -> web.StreamResponse:
        raise web.HTTPPermanentRedirect(f"{CONSOLE_PATH}/")

    async def _index(self, _: web.Request) -> web.Response:
        return self._answer(self._assets["index.html"])

    async def _asset(self, request: web.Request) -> web.Response:
        asset = self._assets.get(request.match_info["path"])
        if asset is None or request.match_info["path"] == "index.html":
            raise web.HTTPNotFound()
        return self._answer(asset)

    @staticmethod
    def _answer(asset: Asset) -> web.Response:
        response = web.Response(body=asset.body, content_type=asset.content_type)
        if asset.charset:
            response.charset = asset.charset
        # Revalidate every time: a new gateway version serves its own files at once.
        response.headers["Cache-Control"] = "no-cache"
        return response


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """aiohttp's on_response_prepare hook: the console's headers on every `/console` answer,
    errors included."""
    if request.path == CONSOLE_PATH or request.path.startswith(f"{CONSOLE_PATH}/"):
        response.headers.update(SECURITY_HEADERS)
