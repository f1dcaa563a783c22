"""Drop-in endpoints for the clients of the systems Tessera replaces: GeoNode's, which
GeoServer calls (geonode.py), and Crafter Profile's access-token API, which Crafter
Engine and Social call (crafter.py). The shapes are theirs; the rules behind them are
Tessera's (the token core, and the API's master-token rules)."""


def init_compat(app) -> None:
    from portal.compat import crafter, geonode

    if app.config["GEONODE_COMPAT"]:
        geonode.register(app)
    app.register_blueprint(crafter.bp)
