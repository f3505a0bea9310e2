"""The latent explorer behind ``vaekit serve``: a web page and a JSON API over one or more runs.

* ``registry`` -- the served runs, found at start-up and opened on first use;
* ``explorer`` -- one opened run: model, encoded test/training images, the map plane and its inverse;
* ``images`` -- decoded arrays to PNG data URLs, and uploads (checked) to model inputs;
* ``schemas`` -- the API's request and response bodies, with their limits;
* ``app`` -- the FastAPI application, its error handling and its guards (host, body size);
* ``server`` -- binding the socket and running uvicorn;
* ``connections`` -- uvicorn's h11 protocol with a request-head timeout and a connection limit;
* ``static/`` -- the page: hand-written HTML, CSS and JavaScript (native ES modules, booted by
  ``main.js``, whose header lists them), no build step, works offline.

Python use::

    from vaekit.serve import RunRegistry, create_app
    app = create_app(RunRegistry("runs/fashion-mnist-vae"))    # any ASGI server can run it
"""
from vaekit.serve.app import create_app
from vaekit.serve.registry import RunRegistry
from vaekit.serve.server import Server

__all__ = ["RunRegistry", "Server", "create_app"]
