"""(being written this session) — see the final docstring."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Add the session layer to ``app`` (sets request.state.user and request.state.csrf)."""
