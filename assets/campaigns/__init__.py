"""Campaigns layer: briefs planned on the published audiences, released lists that only shrink, send lists, results."""
