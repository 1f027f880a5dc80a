"""geoseg.interrupts: a signal's exception waits until the commit it arrived in is whole."""

from __future__ import annotations

import pytest

from geoseg.interrupts import deliver, uninterrupted


def test_an_exception_delivered_inside_the_block_is_raised_after_it():
    done = []
    with pytest.raises(KeyboardInterrupt), uninterrupted():
        deliver(KeyboardInterrupt)
        done.append("first rename")
        with uninterrupted():  # nested: still held until the outer block ends
            deliver(KeyboardInterrupt)
            done.append("second rename")
        done.append("third rename")
    assert done == ["first rename", "second rename", "third rename"]


def test_outside_a_block_it_is_raised_at_once_and_the_blocks_own_error_wins():
    with pytest.raises(KeyboardInterrupt):
        deliver(KeyboardInterrupt)
    with pytest.raises(ValueError), uninterrupted():
        deliver(KeyboardInterrupt)
        raise ValueError("the commit failed")
    with uninterrupted():  # nothing is left pending from the block that failed
        pass
