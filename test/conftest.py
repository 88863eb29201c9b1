"""Shared pytest fixtures."""

from __future__ import annotations

import random
from typing import Iterator

import pytest


@pytest.fixture
def context() -> Iterator[object]:
    """A private rclpy context on a random DDS domain (no cross-talk with parallel runs)."""
    rclpy = pytest.importorskip("rclpy")
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=random.randint(101, 230))
    yield ctx
    rclpy.shutdown(context=ctx)
