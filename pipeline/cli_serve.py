"""``fwtriage serve``: the HTTP API and the reviewers' web UI.

Why uvicorn with one process: uploads are streamed (the event loop is never blocked by a file), reports and
pages are small, and triage runs elsewhere (the fleet) or in one background thread (``--dispatch local``). Put
it behind a TLS-terminating proxy for anything beyond one machine (and set FWTRIAGE_SECURE_COOKIES=1).
"""

from __future__ import annotations

import dataclasses

import click

from pipeline.config import DISPATCHES, Detection, Service, Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--dispatch", type=click.Choice(DISPATCHES), default=None,
              help="Where triage runs: 'local' (this process) or 'fleet' (Celery workers); "
                   "default FWTRIAGE_DISPATCH or local.")
def serve(host: str, port: int, dispatch: str | None) -> None:
    """Serve the API (/api/v1, docs at /docs) and the web UI."""
    import uvicorn

    from pipeline.api.app import create_app, services_for

    service = Service.from_env()
    if dispatch:
        service = dataclasses.replace(service, dispatch=dispatch)
    app = create_app(services_for(Settings.from_env(), service, Detection.from_env()))
    click.echo(f"fwtriage serving on http://{host}:{port}/ (API docs /docs, triage: {service.dispatch})")
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False, proxy_headers=False)
