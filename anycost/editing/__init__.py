"""Edit directions in W: apply named attribute edits to latents (see `directions`)."""

from anycost.editing.directions import DirectionsError, EditDirections, default_directions

__all__ = ["DirectionsError", "EditDirections", "default_directions"]
