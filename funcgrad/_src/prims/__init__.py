"""Primitives, grouped by family; each module defines its primitives with all their rules
and the user-facing functions built on them."""
