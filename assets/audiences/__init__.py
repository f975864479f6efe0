"""Audiences layer: the marketing policy applied, one audience per channel, exclusions and renewal offers,
with their blocking checks."""

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from assets.audiences import assets as _definitions


def definitions() -> Definitions:
    """This layer's assets and asset checks; pipelines/definitions.py merges every layer's."""
    return Definitions(
        assets=load_assets_from_modules([_definitions]),
        asset_checks=load_asset_checks_from_modules([_definitions]),
    )
