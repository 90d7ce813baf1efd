"""Placeholder: commands are added here."""

from __future__ import annotations

import click

COMMANDS: tuple[click.Command, ...] = ()
