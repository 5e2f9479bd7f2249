"""Named action sets and custom button combos for the NES joypad."""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence

from sb3_mario.params import action_combos

ActionsSpec = str | Sequence[Sequence[str]]

# Bit of each button in the NES controller byte (nes-py's JoypadSpace uses the same map).
BUTTON_BITS: dict[str, int] = {
    "right": 0b10000000,
    "left": 0b01000000,
    "down": 0b00100000,
    "up": 0b00010000,
    "start": 0b00001000,
    "select": 0b00000100,
    "B": 0b00000010,
    "A": 0b00000001,
    "NOOP": 0b00000000,
}

# The action set of an env that names none (make_mario_env's default, as in the tutorial).
DEFAULT_ACTIONS = "tutorial"

# The same lists as gym_super_mario_bros.actions, plus the tutorial's two-action set.
ACTION_SETS: dict[str, list[list[str]]] = {
    "tutorial": [["right"], ["right", "A"]],
    "right_only": [["NOOP"], ["right"], ["right", "A"], ["right", "B"], ["right", "A", "B"]],
    "simple": [["NOOP"], ["right"], ["right", "A"], ["right", "B"], ["right", "A", "B"], ["A"], ["left"]],
    "complex": [
        ["NOOP"],
        ["right"],
        ["right", "A"],
        ["right", "B"],
        ["right", "A", "B"],
        ["A"],
        ["left"],
        ["left", "A"],
        ["left", "B"],
        ["left", "A", "B"],
        ["down"],
        ["up"],
    ],
}


def resolve_actions(actions: ActionsSpec) -> list[list[str]]:
    """Turn an action-set name or a list of button combos into a validated list of combos.

    :param actions: ``"tutorial"``, ``"right_only"``, ``"simple"``, ``"complex"``, or e.g. ``[["right"], ["right", "A"]]``
        (button names are case-insensitive)
    :return: the combos with canonical button names
    """
    combos = action_combos(actions)  # the checks live with every other setting's, in params.py
    return [list(combo) for combo in ACTION_SETS[combos]] if isinstance(combos, str) else combos


def action_bytes(combos: Sequence[Sequence[str]]) -> list[int]:
    """Controller byte of each combo (OR of its button bits)."""
    return [functools.reduce(operator.or_, (BUTTON_BITS[button] for button in combo), 0) for combo in combos]
