"""`patch_once`: each rule changes a method once, however often it is installed."""

from __future__ import annotations

from pipeline.local.patches import patch_once


class _Backend:
    def answer(self) -> list[str]:
        return ["moto"]


def _tagged(tag: str):
    def make(original):
        def wrapped(self):
            return [*original(self), tag]

        return wrapped

    return make


def test_a_rule_installed_twice_wraps_once_and_another_rule_wraps_on_top():
    class Backend(_Backend):
        pass

    assert patch_once(Backend, "answer", _tagged("rule-a"), rule="a") is True
    assert patch_once(Backend, "answer", _tagged("rule-a"), rule="a") is False  # a second stack
    assert patch_once(Backend, "answer", _tagged("rule-b"), rule="b") is True
    assert Backend().answer() == ["moto", "rule-a", "rule-b"]


def test_the_same_rule_on_another_class_is_its_own_patch():
    class One(_Backend):
        pass

    class Two(_Backend):
        pass

    assert patch_once(One, "answer", _tagged("x"), rule="x") is True
    assert patch_once(Two, "answer", _tagged("x"), rule="x") is True
    assert (One().answer(), Two().answer()) == (["moto", "x"], ["moto", "x"])
