"""The routers, one module per resource; registered by :func:`api.app.create_app`."""
