"""The marketing policy as a Dagster resource: every asset that applies a rule or a threshold gets
the one versioned policy file through it, so a test or a deployment swaps the file in one place."""

from __future__ import annotations

from dagster import ConfigurableResource

from data_contracts.policy import MarketingPolicy, load_policy


class PolicyResource(ConfigurableResource):
    """`path`: a policy file to use instead of the packaged `data_contracts/marketing_policy.yaml`."""

    path: str | None = None

    def load(self) -> MarketingPolicy:
        """The validated policy; an invalid file fails the step with the file, key and rule."""
        return load_policy(self.path)
