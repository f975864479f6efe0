"""Ingest layer: every landing-zone source read once, validated against its contract, split into valid
and quarantined rows."""

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from assets.ingest import assets as _definitions


def definitions() -> Definitions:
    """This layer's assets and asset checks; pipelines/definitions.py merges every layer's."""
    return Definitions(
        assets=load_assets_from_modules([_definitions]),
        asset_checks=load_asset_checks_from_modules([_definitions]),
    )
