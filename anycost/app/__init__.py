"""`anycost serve`: a local web app to edit images with a fast preview while dragging and the full render when idle.

`ServedModel` (model.py) holds the generator, edit directions and projection; `Clients` (clients.py) one
`PreviewSession` per open page; `AppServer` (server.py) the JSON API and the static page in `static/`;
`measure_drag` (measure.py) a scripted drag that measures previews/s and the delay to the full render.
"""

from anycost.app.clients import Client, Clients
from anycost.app.measure import measure_drag
from anycost.app.model import ApiError, ServedModel
from anycost.app.server import AppServer

__all__ = ["ApiError", "AppServer", "Client", "Clients", "ServedModel", "measure_drag"]
