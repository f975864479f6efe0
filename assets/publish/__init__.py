"""Publish layer: the marketing mart, validated again and swapped into place atomically."""

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from assets.publish import assets as _definitions


def definitions() -> Definitions:
    """This layer's assets and asset checks; pipelines/definitions.py merges every layer's."""
    return Definitions(
        assets=load_assets_from_modules([_definitions], include_specs=True),  # audience_history is an AssetSpec
        asset_checks=load_asset_checks_from_modules([_definitions]),
    )
