"""(being written this session) — see the final docstring."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
