"""Embedding API: a session that renders a cheap preview first and the full image when the user is idle."""

from anycost.preview.session import PreviewSession, Render, RenderError, Request, SessionClosed, Superseded

__all__ = ["PreviewSession", "Render", "RenderError", "Request", "SessionClosed", "Superseded"]
