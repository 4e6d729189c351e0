"""The pydeck map of the twin: :func:`build_deck` for notebooks, the served page in ``frontend.page``."""

from frontend.deck import build_deck, map_layers

__all__ = ["build_deck", "map_layers"]
