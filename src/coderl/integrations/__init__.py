"""Adapters that let other training libraries use coderl's executor (``coderl.integrations.trl``)."""
