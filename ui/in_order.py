"""The base of the page's ordered groups of components (ui/layout.py, ui/personal_layout.py)."""

from dataclasses import fields


class InOrder:
    """``as_list()``: the fields in declaration order, as Gradio takes an event's inputs and outputs."""

    __slots__ = ()

    def as_list(self) -> list:
        return [getattr(self, f.name) for f in fields(self)]
