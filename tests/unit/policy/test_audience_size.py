"""The size-anomaly decision (`models.audience_size`): the one rule behind the `size_anomaly` check and
the mart's validation."""

from data_contracts.policy import AnomalyPolicy
from models.audience_size import held_back, size_change

ANOMALY = AnomalyPolicy(threshold=0.30, min_change=10)


def test_a_jump_past_the_threshold_is_held_back_unless_confirmed():
    assert size_change("email", 51, 11, set(), ANOMALY).held_back
    confirmed = size_change("email", 51, 11, {"email"}, ANOMALY)
    assert confirmed.confirmed and not confirmed.held_back
    assert size_change("email", 51, 11, {"sms"}, ANOMALY).held_back  # a confirmation is per channel


def test_small_moves_first_publications_and_the_floor_pass():
    assert not size_change("email", 110, 100, (), ANOMALY).held_back  # +10%
    assert not size_change("email", 9, 1, (), ANOMALY).held_back  # fewer than 10 customers
    assert not size_change("email", 500, None, (), ANOMALY).held_back  # nothing published yet
    assert size_change("email", 40, 100, (), ANOMALY).change == -0.6


def test_held_back_lists_only_the_channels_that_need_a_person():
    sizes = {"email": 51, "sms": 12, "letter": 200}
    published = {"email": 11, "sms": 12, "letter": None}
    assert [c.channel for c in held_back(sizes, published, set(), ANOMALY)] == ["email"]
    assert held_back(sizes, published, {"email"}, ANOMALY) == []
