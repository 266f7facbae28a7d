"""Bridges to the tools users already have (``supervision``); each bridge imports its package lazily."""
